//! `--pin`: the load generator and the mocks on one half of the CPUs, the proxies (gateway and
//! forwarder) on the other.
//!
//! Why: unpinned, load generator, proxy and mock share every core, so a proxy's throughput ratio
//! is the three programs' summed cost per call and no proxy, however lean, can reach half of
//! direct: a hop in series is a server plus a client, as much work as the load generator and the
//! mock together. In production the gateway has cores of its own. Pinned, every target gets the
//! same load half (the direct target leaves the proxy half idle) and a proxy runs on a half of its
//! own, so its ratio says how much of what the load half generates and the mock serves the proxy
//! forwards with as many cores of its own.
//!
//! A thread's affinity is inherited by the threads it starts, so the gateway's SQLite writer and
//! checkpoint threads, started while the gateway is built on its runtime, stay on its half too.

use anyhow::{Context, Result};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// The two halves of the CPUs this process may run on.
#[derive(Clone, Debug)]
pub struct Split {
    pub load: Vec<usize>,
    pub proxy: Vec<usize>,
}

impl Split {
    /// Halves the CPUs of this process's affinity mask (the first half for the load); refuses a
    /// machine with fewer than two.
    pub fn halves() -> Result<Split> {
        let mask = nix::sched::sched_getaffinity(Pid::from_raw(0)).context("read CPU affinity")?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| mask.is_set(cpu).unwrap_or(false))
            .collect();
        anyhow::ensure!(
            cpus.len() >= 2,
            "--pin needs at least 2 CPUs, this process may use {}",
            cpus.len()
        );
        let (load, proxy) = cpus.split_at(cpus.len() / 2);
        Ok(Split {
            load: load.to_vec(),
            proxy: proxy.to_vec(),
        })
    }
}

/// Confines the calling thread (and the threads it starts from now on) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .with_context(|| format!("CPU {cpu} out of range"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("pin thread to CPUs {cpus:?}"))
}

/// The runtime the proxies are started on, with the CPUs it is pinned to.
pub struct ProxyRuntime {
    runtime: tokio::runtime::Runtime,
    cpus: Vec<usize>,
}

impl ProxyRuntime {
    pub fn start(cpus: &[usize]) -> Result<ProxyRuntime> {
        Ok(ProxyRuntime {
            runtime: pinned_runtime("bench-proxy", cpus)?,
            cpus: cpus.to_vec(),
        })
    }

    /// Runs the future `make` builds inside this runtime, on a thread of the proxy CPUs: the
    /// tasks it spawns land on the proxy workers, and the threads it starts (SQLite's) inherit
    /// the proxy CPUs. The future is built on that thread, so it need not be `Send`.
    pub async fn run<T, F>(&self, make: impl FnOnce() -> F + Send + 'static) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>>,
    {
        let (runtime, cpus) = (self.runtime.handle().clone(), self.cpus.clone());
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("bench-proxy-setup".into())
            .spawn(move || {
                let outcome = pin_current_thread(&cpus).and_then(|()| runtime.block_on(make()));
                let _ = done.send(outcome);
            })
            .context("start the proxy setup thread")?;
        result.await.context("the proxy setup thread died")?
    }
}

/// A multi-threaded runtime whose threads (workers and blocking pool) run on `cpus` only, with
/// one worker per CPU.
pub fn pinned_runtime(name: &str, cpus: &[usize]) -> Result<tokio::runtime::Runtime> {
    let cpus_for_threads = cpus.to_vec();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus.len())
        .thread_name(name)
        .on_thread_start(move || {
            // A thread left unpinned would only blur the split; the run goes on and says so.
            if let Err(err) = pin_current_thread(&cpus_for_threads) {
                eprintln!("rungate-bench: {err:#}");
            }
        })
        .enable_all()
        .build()
        .with_context(|| format!("start the {name} runtime"))
}
