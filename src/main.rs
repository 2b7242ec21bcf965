//! The `pxelab` command line. Parsing only: every command is a thin call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use pxelab::app::{self, Face, UpOptions};
use pxelab::headless::Format;

const AFTER_HELP: &str = "\
Typical session:
  pxelab demo                          a virtual lab on loopback: no root, no network touched
  pxelab check                         validate ./lab.yaml and print what each node will get
  pxelab render node-3 user-data       exactly what node-3 will be served
  sudo pxelab up                       boot servers on the lab interface, with the console
  sudo pxelab up --no-tui --json       the same, headless: one JSON object per event
  pxelab adopt 52:54:00:aa:bb:cc --role k3s-agent
                                       adopt a held machine (through the running instance)

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
    /// Validate lab.yaml, print the plan per node; exit 1 on any error.
    Check {
        /// Treat warnings (e.g. boot assets not downloaded yet) as errors.
        #[arg(long)]
        strict: bool,
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
    },
    /// Remove a MAC from the lab (through the running instance, else by editing lab.yaml).
    Forget {
        /// The machine's MAC address.
        mac: String,
    },
    /// Reboot a node over SSH, through the running instance.
    Reboot {
        /// The node: MAC or hostname.
        node: String,
    },
    /// Make the running instance read lab.yaml again now.
    Reload,
    /// List the lab's nodes (live states when an instance runs).
    Nodes {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Ask a pxelab on another machine (its `http.admin_bind`), e.g.
        /// https://192.168.1.10:7480; its certificate is pinned on first use.
        #[arg(long, env = "PXELAB_REMOTE", value_name = "URL")]
        remote: Option<String>,
        /// With --remote: the file holding that pxelab's `.pxelab/admin-token`
        /// (or the token itself in PXELAB_TOKEN).
        #[arg(long, value_name = "FILE", requires = "remote")]
        token_file: Option<PathBuf>,
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

/// One command through the running instance's admin API.
fn remote(config: &std::path::Path, what: pxelab::cli::Remote) -> anyhow::Result<ExitCode> {
    init_logging(None);
    runtime()?.block_on(pxelab::cli::remote(config, what))
}

fn main() -> ExitCode {
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
        Command::Check { strict } => pxelab::cli::check(&cli.config, strict),
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
        } => {
            init_logging(None);
            runtime()?.block_on(pxelab::cli::adopt(&cli.config, &mac, &role, hostname, ip))
        }
        Command::Forget { mac } => remote(&cli.config, pxelab::cli::Remote::Forget(mac)),
        Command::Reboot { node } => remote(&cli.config, pxelab::cli::Remote::Reboot(node)),
        Command::Reload => remote(&cli.config, pxelab::cli::Remote::Reload),
        Command::Nodes {
            json,
            remote,
            token_file,
        } => {
            init_logging(None);
            match remote {
                Some(url) => runtime()?.block_on(pxelab::cli::remote_nodes(
                    &url,
                    token_file.as_deref(),
                    json,
                )),
                None => runtime()?.block_on(pxelab::cli::nodes(&cli.config, json)),
            }
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
