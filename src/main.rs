//! The `pxelab` command line. Parsing only: every command is a thin call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use pxelab::app::{self, Face, UpOptions};
use pxelab::headless::Format;

mod malloc_arenas;

const AFTER_HELP: &str = "\
Typical session:
  pxelab demo                          a virtual lab on loopback: no root, no network touched
  pxelab check                         validate ./lab.yaml and print what each node will get
  pxelab render node-3 user-data       exactly what node-3 will be served
  sudo pxelab up                       boot servers on the lab interface, with the console
  sudo pxelab up --no-tui --json       the same, headless: one JSON object per event
  pxelab adopt 52:54:00:aa:bb:cc --role k3s-agent
                                       adopt a held machine (through the running instance)
  pxelab attach https://10.0.0.1:7480 --token-file lab-token
                                       the console of a pxelab on another machine
  pxelab power on all                  wake the lab (Wake-on-LAN or each node's power: driver)
  pxelab roll                          reboot the nodes one at a time, each Ready before the next

Files: lab.yaml (the lab, edited by you and by adoption, comments kept);
       .pxelab/ beside it (k3s token, operator SSH key, host keys, leases: keep private).";

/// Network-boot a diskless Kubernetes lab and watch it happen.
#[derive(Debug, Parser)]
#[command(name = "pxelab", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// The lab file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "lab.yaml",
        env = "PXELAB_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Artifact {
    /// The node's iPXE script.
    Ipxe,
    /// The kernel command line.
    Cmdline,
    /// NoCloud meta-data.
    MetaData,
    /// NoCloud user-data (secrets included: mind where you paste it).
    UserData,
}

/// Where a command goes when it goes to a pxelab on another machine.
#[derive(Debug, Clone, clap::Args)]
struct RemoteArgs {
    /// Ask a pxelab on another machine (its `http.admin_bind`), e.g.
    /// https://192.168.1.10:7480; its certificate is pinned on first use.
    #[arg(long, env = "PXELAB_REMOTE", value_name = "URL")]
    remote: Option<String>,
    /// With --remote: the file holding that pxelab's `.pxelab/admin-token`
    /// (or the token itself in PXELAB_TOKEN).
    #[arg(long, value_name = "FILE", requires = "remote")]
    token_file: Option<PathBuf>,
}

/// `pxelab power` actions.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum PowerVerb {
    /// Turn on (Wake-on-LAN, or the `cmd` driver's `on`).
    On,
    /// Turn off (poweroff over SSH, or the `cmd` driver's `off`).
    Off,
    /// Off and on again (a reboot over SSH, or the `cmd` driver's `cycle`).
    Cycle,
}

/// Where `pxelab roll` puts the k3s server.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ServerVerb {
    /// Before the agents.
    First,
    /// After the agents.
    Last,
    /// Not at all.
    Skip,
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    pxelab::config::net::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. 15m, 900)"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the boot servers and the console (or a headless face).
    Up {
        /// No console: print one line per event on stdout.
        #[arg(long)]
        no_tui: bool,
        /// With --no-tui: JSON lines instead of text.
        #[arg(long, requires = "no_tui")]
        json: bool,
        /// Also write every event as JSON lines to this file.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Console theme: a name from themes/ (dark, light, high-contrast) or a YAML file.
        #[arg(long)]
        theme: Option<String>,
        /// Run even when some servers cannot start (no such interface, no root, port
        /// taken). Without it `up` stops, naming each server and why, and exits 1.
        #[arg(long)]
        keep_going: bool,
    },
    /// Validate lab.yaml and hold it against this machine (interface, addresses, iPXE
    /// binaries, boot files), print the plan per node; exit 1 on any error.
    Check {
        /// Treat warnings (e.g. boot assets not downloaded yet) as errors.
        #[arg(long)]
        strict: bool,
        /// Check the file alone, not against this machine (a lab.yaml written for
        /// another machine, or checked in CI).
        #[arg(long)]
        no_host: bool,
    },
    /// Print exactly what a node will be served.
    Render {
        /// The node: MAC or hostname.
        node: String,
        /// What to print.
        #[arg(value_enum, default_value = "ipxe")]
        what: Artifact,
    },
    /// Adopt a MAC into the lab (through the running instance, else by editing lab.yaml).
    Adopt {
        /// The machine's MAC address.
        mac: String,
        /// Its role (k3s-server, k3s-agent, or one of lab.yaml's roles).
        #[arg(long)]
        role: String,
        /// Its hostname (default: from adopt.hostname_pattern).
        #[arg(long)]
        hostname: Option<String>,
        /// A fixed address (server mode reservation).
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Remove a MAC from the lab (through the running instance, else by editing lab.yaml).
    Forget {
        /// The machine's MAC address.
        mac: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Reboot a node over SSH, through the running instance.
    Reboot {
        /// The node: MAC or hostname.
        node: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Make the running instance read lab.yaml again now.
    Reload {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Power nodes on, off or around with their `power:` driver (wol, ssh, cmd);
    /// through the running instance, else from here.
    Power {
        /// What to do.
        #[arg(value_enum)]
        action: PowerVerb,
        /// The nodes: MACs or hostnames, or `all` (on: the k3s server first; off: last).
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Reboot every Ready node one at a time, each Ready again before the next; stops
    /// at the first that does not come back, naming it. Needs the running instance.
    Roll {
        /// Where the k3s server goes (its API is down while it boots).
        #[arg(long, value_enum, default_value = "last")]
        server: ServerVerb,
        /// Confirm rebooting the k3s server without asking.
        #[arg(long, short)]
        yes: bool,
        /// How long each node may take to be Ready again (e.g. 15m, 900).
        #[arg(long, default_value = "15m", value_parser = parse_timeout)]
        node_timeout: std::time::Duration,
        /// Stop the roll under way (the node being waited for is left as it is).
        #[arg(long, conflicts_with_all = ["yes"])]
        stop: bool,
    },
    /// List the lab's nodes (live states when an instance runs).
    Nodes {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Write the k3s cluster admin's kubeconfig, read from the k3s server over SSH and
    /// pointed at its lab address (mode 0600).
    Kubeconfig {
        /// Where to write it (default: .pxelab/kubeconfig beside lab.yaml).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The console of a pxelab on another machine (`up --no-tui` with
    /// `http.admin_bind`), over its admin API: same screens and keys, the commands
    /// carried out there. Its certificate is pinned on first use.
    Attach {
        /// Its admin API, e.g. https://192.168.1.10:7480.
        #[arg(env = "PXELAB_REMOTE", value_name = "URL")]
        url: String,
        /// The file holding that pxelab's `.pxelab/admin-token` (or the token itself in
        /// PXELAB_TOKEN).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Console theme: dark, light, high-contrast or a YAML file.
        #[arg(long)]
        theme: Option<String>,
    },
    /// A virtual lab on loopback with simulated nodes: no root, no network touched.
    Demo {
        /// Number of simulated nodes.
        #[arg(long, default_value_t = 7)]
        nodes: usize,
        /// No console: print one line per event.
        #[arg(long)]
        no_tui: bool,
        /// With --no-tui: JSON lines.
        #[arg(long, requires = "no_tui")]
        json: bool,
        /// Speed factor for the simulated boots (2 = twice as fast).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop after this many seconds (default: run until quit).
        #[arg(long)]
        duration: Option<u64>,
        /// With --no-tui: stop as soon as every machine is Ready or failed, and exit
        /// non-zero if --duration ends the run first (a smoke test of the whole chain).
        #[arg(long, requires = "no_tui")]
        until_done: bool,
        /// Console theme.
        #[arg(long)]
        theme: Option<String>,
    },
    /// Download, verify (SHA-256, OpenPGP) and unpack a release's netboot files into
    /// boot.assets_dir, and point lab.yaml at them.
    Fetch(pxelab::fetch::FetchArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// One command through the running instance's admin API, or with `--remote` through
/// that pxelab's.
fn remote(
    config: &std::path::Path,
    what: pxelab::cli::Remote,
    to: RemoteArgs,
) -> anyhow::Result<ExitCode> {
    init_logging(None);
    let rt = runtime()?;
    match to.remote {
        Some(url) => rt.block_on(pxelab::attach::cli::remote(
            &url,
            to.token_file.as_deref(),
            what,
        )),
        None => rt.block_on(pxelab::cli::remote(config, what)),
    }
}

fn main() -> ExitCode {
    malloc_arenas::cap();
    malloc_arenas::start_trimming();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pxelab: {}", pxelab::app::error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn init_logging(to_file: Option<PathBuf>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PXELAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match to_file.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(f) => {
            let _ = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up {
            no_tui,
            json,
            record,
            theme,
            keep_going,
        } => {
            let face = if no_tui {
                init_logging(None);
                Face::Headless(if json { Format::Json } else { Format::Text })
            } else {
                pxelab::tui::require_terminal()?;
                init_logging(Some(PathBuf::from("pxelab.log")));
                Face::Tui { theme }
            };
            runtime()?.block_on(app::up(UpOptions {
                config: cli.config,
                face,
                record,
                keep_going,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { strict, no_host } => pxelab::cli::check(&cli.config, strict, !no_host),
        Command::Render { node, what } => {
            let what = match what {
                Artifact::Ipxe => pxelab::cli::Artifact::Ipxe,
                Artifact::Cmdline => pxelab::cli::Artifact::Cmdline,
                Artifact::MetaData => pxelab::cli::Artifact::MetaData,
                Artifact::UserData => pxelab::cli::Artifact::UserData,
            };
            pxelab::cli::render(&cli.config, &node, what)
        }
        Command::Adopt {
            mac,
            role,
            hostname,
            ip,
            remote,
        } => {
            init_logging(None);
            match remote.remote {
                Some(url) => {
                    let command = pxelab::engine::Command::Adopt {
                        mac: pxelab::cli::mac_arg(&mac)?,
                        role,
                        hostname,
                        ip,
                    };
                    runtime()?.block_on(pxelab::attach::cli::command(
                        &url,
                        remote.token_file.as_deref(),
                        command,
                    ))
                }
                None => {
                    runtime()?.block_on(pxelab::cli::adopt(&cli.config, &mac, &role, hostname, ip))
                }
            }
        }
        Command::Forget { mac, remote: to } => {
            remote(&cli.config, pxelab::cli::Remote::Forget(mac), to)
        }
        Command::Reboot { node, remote: to } => {
            remote(&cli.config, pxelab::cli::Remote::Reboot(node), to)
        }
        Command::Reload { remote: to } => remote(&cli.config, pxelab::cli::Remote::Reload, to),
        Command::Power { action, nodes } => {
            use pxelab::engine::service::PowerAction;
            let action = match action {
                PowerVerb::On => PowerAction::On,
                PowerVerb::Off => PowerAction::Off,
                PowerVerb::Cycle => PowerAction::Cycle,
            };
            init_logging(None);
            runtime()?.block_on(pxelab::cli::power::power(&cli.config, action, &nodes))
        }
        Command::Roll {
            server,
            yes,
            node_timeout,
            stop,
        } => {
            use pxelab::engine::roll::ServerTurn;
            let server = match server {
                ServerVerb::First => ServerTurn::First,
                ServerVerb::Last => ServerTurn::Last,
                ServerVerb::Skip => ServerTurn::Skip,
            };
            let args = pxelab::cli::power::RollArgs {
                server,
                yes,
                node_timeout,
                stop,
            };
            init_logging(None);
            runtime()?.block_on(pxelab::cli::power::roll(&cli.config, &args))
        }
        Command::Nodes { json, remote } => {
            init_logging(None);
            match remote.remote {
                Some(url) => runtime()?.block_on(pxelab::attach::cli::nodes(
                    &url,
                    remote.token_file.as_deref(),
                    json,
                )),
                None => runtime()?.block_on(pxelab::cli::nodes(&cli.config, json)),
            }
        }
        Command::Kubeconfig { output } => {
            init_logging(None);
            runtime()?.block_on(pxelab::cli::kubeconfig(&cli.config, output))
        }
        Command::Attach {
            url,
            token_file,
            theme,
        } => {
            pxelab::tui::require_terminal_else(
                "`attach` is the console; without one, `pxelab nodes --remote URL` lists the nodes",
            )?;
            init_logging(Some(std::env::temp_dir().join("pxelab-attach.log")));
            runtime()?.block_on(pxelab::attach::cli::attach(
                &url,
                token_file.as_deref(),
                theme,
            ))
        }
        Command::Demo {
            nodes,
            no_tui,
            json,
            speed,
            duration,
            until_done,
            theme,
        } => {
            let face = if no_tui {
                init_logging(None);
                Face::Headless(if json { Format::Json } else { Format::Text })
            } else {
                pxelab::tui::require_terminal()?;
                init_logging(Some(std::env::temp_dir().join("pxelab-demo.log")));
                Face::Tui { theme }
            };
            runtime()?.block_on(pxelab::sim::demo::run(pxelab::sim::demo::DemoOptions {
                nodes,
                face,
                speed,
                duration: duration.map(std::time::Duration::from_secs),
                until_done,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch(args) => {
            println!("{}", pxelab::fetch::run(&cli.config, &args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "pxelab", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
