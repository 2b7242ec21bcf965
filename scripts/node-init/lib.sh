# Helpers of the node image's /init: tiny-cloud actions over the flattened user-data.
# shellcheck shell=sh

UD_FLAT=/run/user-data.flat
MD_FLAT=/run/meta-data.flat

# say TEXT: a progress line on the console (the test harness reads the serial log).
say() { echo "pxelab-node: $*" > /dev/console; }

# The NoCloud seed URL: s= of `ds=nocloud;s=URL[;…]`, the last ds= word of the cmdline.
seed_url() {
    _ds=""
    for _w in $(cat /proc/cmdline); do
        case "$_w" in ds=*) _ds="${_w#ds=}" ;; esac
    done
    _oldifs=$IFS
    IFS=';'
    for _part in $_ds; do
        case "$_part" in s=* | seedfrom=*) echo "${_part#*=}" ;; esac
    done
    IFS=$_oldifs
}

# NoCloud data: fetched once each, in this order, with busybox wget and no retries, as
# tiny-cloud's nocloud imds does; the URL is "$s/$file" even when s ends in '/'. busybox
# 1.35 `wget -T` segfaults on errors, hence `timeout`.
fetch_nocloud() {
    _seed=$(seed_url)
    if [ -z "$_seed" ]; then
        say "no ds=nocloud;s=URL on the command line"
        return 0
    fi
    for _f in meta-data user-data vendor-data network-config; do
        if timeout 10 wget -q -O "/var/lib/cloud/$_f.tmp" "$_seed/$_f" 2> /dev/null; then
            mv "/var/lib/cloud/$_f.tmp" "/var/lib/cloud/$_f"
            say "fetched $_f"
        else
            rm -f "/var/lib/cloud/$_f.tmp"
            say "no $_f from $_seed/$_f"
        fi
    done
    touch /var/lib/cloud/.nocloud_loaded
}

# tc_phase PHASE ACTION FUNCTION: logs "<action>: starting", runs it, logs done|failed,
# with tiny-cloud's tag `tiny-cloud/<phase>[PID]` and facility local7.
tc_phase() {
    _p="$1"
    _a="$2"
    _f="$3"
    logger -p local7.info -t "tiny-cloud/$_p[$$]" -- "$_a: starting"
    if "$_f"; then
        logger -p local7.info -t "tiny-cloud/$_p[$$]" -- "$_a: done"
    else
        logger -p local7.err -t "tiny-cloud/$_p[$$]" -- "$_a: failed"
        say "tiny-cloud $_p/$_a failed"
    fi
}

tc_noop() { :; }

# ud_get PATH [FLATFILE]: the decoded value at PATH (no trailing newline added).
ud_get() {
    awk -F '\t' -v p="$1" '
        $1 == p {
            v = $2; out = ""; n = length(v)
            for (i = 1; i <= n; i++) {
                c = substr(v, i, 1)
                if (c == "\\" && i < n) {
                    i++; c = substr(v, i, 1)
                    if (c == "n") c = "\n"; else if (c == "t") c = "\t"
                }
                out = out c
            }
            printf "%s", out
            found = 1
            exit
        }
        END { exit found ? 0 : 1 }' "${2:-$UD_FLAT}"
}

# ud_list PATH [FLATFILE]: the child names (indices or keys) under PATH, in order.
ud_list() {
    awk -F '\t' -v p="$1/" '
        index($1, p) == 1 {
            r = substr($1, length(p) + 1); sub(/\/.*/, "", r)
            if (!(r in seen)) { seen[r] = 1; print r }
        }' "${2:-$UD_FLAT}"
}

ud_flatten() {
    : > "$UD_FLAT"
    : > "$MD_FLAT"
    if [ -f /var/lib/cloud/user-data ]; then
        case "$(head -n 1 /var/lib/cloud/user-data)" in
            "#cloud-config"* | "#alpine-config"*)
                awk -f /lib/pxelab-node/yflat.awk /var/lib/cloud/user-data > "$UD_FLAT" 2> /run/yflat.err
                [ -s /run/yflat.err ] && say "user-data: $(cat /run/yflat.err)"
                ;;
        esac
    fi
    [ -f /var/lib/cloud/meta-data ] && awk -f /lib/pxelab-node/yflat.awk /var/lib/cloud/meta-data > "$MD_FLAT" 2> /dev/null
    return 0
}

tc_interfaces() {
    mkdir -p /etc/network
    printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0\n\tuse dhcp\n' > /etc/network/interfaces
}

tc_save_userdata() {
    [ -f /var/lib/cloud/user-data ] || return 0
    case "$(head -n 1 /var/lib/cloud/user-data)" in
        "#!"*)
            # script user-data: run it now, as tiny-cloud's script handler does
            sh /var/lib/cloud/user-data > /var/log/user-data.log 2>&1
            echo $? > /var/log/user-data.exit
            ;;
    esac
    return 0
}

tc_hostname() {
    h=$(ud_get hostname "$MD_FLAT" || ud_get local-hostname "$MD_FLAT" || ud_get hostname)
    [ -n "$h" ] || return 0
    h="${h%%.*}"
    echo "$h" > /etc/hostname
    hostname "$h"
    printf '127.0.1.1\t%s\n' "$h" >> /etc/hosts
}

# add_user NAME SHELL: a key-only account (shadow '*'), home /home/NAME.
add_user() {
    _u="$1"
    _sh="${2:-/bin/sh}"
    grep -q "^$_u:" /etc/passwd && return 0
    _uid=1000
    while awk -F: -v u="$_uid" '$3 == u { f = 1 } END { exit !f }' /etc/passwd; do _uid=$((_uid + 1)); done
    echo "$_u:x:$_uid:$_uid::/home/$_u:$_sh" >> /etc/passwd
    echo "$_u:*:19000:0:99999:7:::" >> /etc/shadow
    echo "$_u:x:$_uid:" >> /etc/group
    sed -i "s/^wheel:x:10:\(.*\)$/wheel:x:10:\1,$_u/; s/:,/:/" /etc/group
    mkdir -p "/home/$_u"
    chown "$_uid:$_uid" "/home/$_u"
    chmod 755 "/home/$_u"
}

# add_keys USER: appends stdin's keys to USER's authorized_keys.
add_keys() {
    _home=$(awk -F: -v u="$1" '$1 == u { print $6 }' /etc/passwd)
    [ -n "$_home" ] || return 1
    mkdir -p "$_home/.ssh"
    cat >> "$_home/.ssh/authorized_keys"
    chmod 700 "$_home/.ssh"
    chmod 600 "$_home/.ssh/authorized_keys"
    chown -R "$1:$1" "$_home/.ssh"
}

default_user() {
    ud_get "users/$(ud_list users | head -n 1)/name" 2> /dev/null || echo alpine
}

tc_users() {
    for i in $(ud_list users); do
        name=$(ud_get "users/$i/name") || continue
        add_user "$name" "$(ud_get "users/$i/shell" || echo /bin/sh)"
        for k in $(ud_list "users/$i/ssh_authorized_keys"); do
            ud_get "users/$i/ssh_authorized_keys/$k" | add_keys "$name"
            echo >> "/home/$name/.ssh/authorized_keys"
        done
    done
    return 0
}

tc_bootcmd() {
    for i in $(ud_list bootcmd); do
        run_cmd "bootcmd/$i"
    done
    return 0
}

tc_write_files() {
    rc=0
    for i in $(ud_list write_files); do
        path=$(ud_get "write_files/$i/path") || continue
        mode=$(ud_get "write_files/$i/permissions" || echo 0644)
        owner=$(ud_get "write_files/$i/owner" || echo root:root)
        enc=$(ud_get "write_files/$i/encoding" || echo text/plain)
        append=$(ud_get "write_files/$i/append" || echo false)
        mkdir -p "$(dirname "$path")"
        tmp=$(mktemp /run/wf.XXXXXX)
        case "$enc" in
            gz | gzip | gz+base64 | gzip+base64 | gz+b64 | gzip+b64) ud_get "write_files/$i/content" | base64 -d | gzip -d > "$tmp" ;;
            base64 | b64) ud_get "write_files/$i/content" | base64 -d > "$tmp" ;;
            *) ud_get "write_files/$i/content" > "$tmp" ;;
        esac || rc=1
        if [ "$append" = true ]; then cat "$tmp" >> "$path"; else cat "$tmp" > "$path"; fi
        rm -f "$tmp"
        chmod "$mode" "$path" || rc=1
        chown "$owner" "$path" 2> /dev/null || true
    done
    return $rc
}

# One `apk add` for all of them, as tiny-cloud does; its failure fails the action.
tc_packages() {
    _pk=""
    for i in $(ud_list packages); do
        _pk="$_pk $(ud_get "packages/$i")"
    done
    [ -z "$_pk" ] && return 0
    # shellcheck disable=SC2086
    apk add $_pk
}

tc_ssh_keys() {
    u=$(default_user)
    grep -q "^$u:" /etc/passwd || add_user "$u" /bin/sh
    for k in $(ud_list ssh_authorized_keys); do
        { ud_get "ssh_authorized_keys/$k"; echo; } | add_keys "$u"
    done
    # AWS-style public-keys in meta-data
    for k in $(ud_list public-keys "$MD_FLAT"); do
        { ud_get "public-keys/$k" "$MD_FLAT"; echo; } | add_keys "$u"
    done
    return 0
}

# run_cmd PATH: a runcmd/bootcmd item, a string (sh -c) or a list (argv).
run_cmd() {
    if ud_get "$1" > /run/cmd 2> /dev/null; then
        sh -c "$(cat /run/cmd)"
    else
        set --
        for j in $(ud_list "$1"); do
            set -- "$@" "$(ud_get "$1/$j")"
        done
        [ $# -gt 0 ] && "$@"
    fi
}

# Like tiny-cloud, each command runs in turn; the action's status is the last one's.
tc_runcmd() {
    rc=0
    for i in $(ud_list runcmd); do
        run_cmd "runcmd/$i" >> /var/log/runcmd.log 2>&1
        rc=$?
    done
    return $rc
}

tc_bootstrap_complete() {
    touch /var/lib/cloud/.bootstrap-complete
}

# The node's SSH server variant, from `pxelab_node_sshd=openssh|dropbear` on the kernel
# command line (default openssh). It says which kind of pxelab role the node stands in
# for: roles with `ssh.server: openssh` deliver an OpenSSH-format key at
# /etc/ssh/ssh_host_ed25519_key, roles with `ssh.server: dropbear` a dropbear-format key
# at /etc/dropbear/dropbear_ed25519_host_key.
node_sshd() {
    _v=openssh
    for _w in $(cat /proc/cmdline); do
        case "$_w" in pxelab_node_sshd=*) _v="${_w#pxelab_node_sshd=}" ;; esac
    done
    echo "$_v"
}

# dropbear with the pinned host key when user-data delivered one, else a key generated
# now (which a pinned watcher will rightly refuse).
# - openssh (default): an OpenSSH-format key is converted with dropbearconvert, as a
#   node whose image converts at boot would.
# - dropbear: like Alpine's dropbear package, which never converts: the key at
#   /etc/dropbear/dropbear_ed25519_host_key is loaded as delivered, and generated only
#   if there is none. So this variant passes the pinned check only when pxelab really
#   delivered the key in dropbear's own format.
start_dropbear() {
    mkdir -p /etc/dropbear
    if [ ! -f /etc/dropbear/dropbear_ed25519_host_key ]; then
        if [ "$(node_sshd)" != dropbear ] && [ -f /etc/ssh/ssh_host_ed25519_key ]; then
            dropbearconvert openssh dropbear /etc/ssh/ssh_host_ed25519_key /etc/dropbear/dropbear_ed25519_host_key > /dev/null 2>&1 \
                || say "dropbearconvert failed on /etc/ssh/ssh_host_ed25519_key"
        fi
        if [ ! -f /etc/dropbear/dropbear_ed25519_host_key ]; then
            dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key > /dev/null 2>&1
            say "no host key in user-data: generated one"
        fi
    fi
    dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22 -s -P /run/dropbear.pid
    say "dropbear started ($(dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | awk '/^Fingerprint/ { print $2 }'))"
}
