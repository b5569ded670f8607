//! `shards`: the thread-per-core runtime under shardcast.
//!
//! One glommio executor per shard (pinned to a CPU when the machine allows), a full mesh of
//! bounded cross-shard channels, a fixed-seed hash that maps a stream to its home shard, listener
//! address reservation for SO_REUSEPORT groups, and a clean shutdown on SIGINT/SIGTERM.
//! It knows nothing about media: the message type of the mesh is the caller's.

mod listen;
mod mesh;
mod shutdown;

pub use listen::{reserve, Reservation};
pub use mesh::{Mesh, SendError};

pub use shutdown::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use std::future::Future;

/// How to start the runtime.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of shards (executors); at least 1.
    pub shards: usize,
    /// Pin each executor to its own CPU when there are enough CPUs.
    pub pin: bool,
    /// Capacity, in messages, of each directed cross-shard channel.
    pub mesh_capacity: usize,
}

/// What a shard's main future gets: who it is, its mesh endpoints and the shutdown signal.
pub struct ShardContext<M: Send + 'static> {
    /// This shard's index, `0..count`.
    pub id: usize,
    /// Total number of shards.
    pub count: usize,
    /// Cross-shard channels to and from every other shard.
    pub mesh: Mesh<M>,
    /// Becomes set when the process was asked to stop.
    pub shutdown: Shutdown,
}

/// The home shard of a stream: a fixed-seed hash of its key (`app/name`) modulo the shard
/// count. Every shard computes the same answer without asking anyone.
pub fn home_shard(key: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let state = ahash::RandomState::with_seeds(
        0x5eed_0001_dead_beef,
        0x0123_4567_89ab_cdef,
        0x0fed_cba9_8765_4321,
        0x1357_9bdf_2468_ace0,
    );
    (state.hash_one(key) % shards as u64) as usize
}

/// Start `options.shards` executors, run `main` on each and block until all return.
///
/// Installs SIGINT/SIGTERM handlers that set every shard's [`Shutdown`]; each shard's `main`
/// is expected to watch it, stop accepting, close its connections and return.
pub fn run<M, G, F>(options: Options, main: G) -> std::io::Result<()>
where
    M: Send + 'static,
    G: Fn(ShardContext<M>) -> F + Send + Clone + 'static,
    F: Future<Output = ()> + 'static,
{
    let count = options.shards.max(1);
    let shutdown = Shutdown::install()?;
    let start = |placement: PoolPlacement| {
        // Each shard takes its own ends of the mesh (start-up only; never on the data path).
        let ends: Vec<Option<mesh::Endpoints<M>>> =
            mesh::build(count, options.mesh_capacity.max(1))
                .into_iter()
                .map(Some)
                .collect();
        let ends = Arc::new(Mutex::new(ends));
        let next_id = Arc::new(AtomicUsize::new(0));
        let shutdown = shutdown.clone();
        let main = main.clone();
        LocalExecutorPoolBuilder::new(placement)
            .name("shard")
            .on_all_shards(move || {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                let my_ends = ends
                    .lock()
                    .ok()
                    .and_then(|mut e| e.get_mut(id).and_then(Option::take));
                let shutdown = shutdown.clone();
                let main = main.clone();
                async move {
                    let Some(my_ends) = my_ends else {
                        tracing::error!(shard = id, "no mesh endpoints for this shard");
                        return;
                    };
                    let ctx = ShardContext {
                        id,
                        count,
                        mesh: Mesh::connect(id, my_ends).await,
                        shutdown,
                    };
                    main(ctx).await;
                }
            })
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if options.pin && count > cpus {
        tracing::info!(
            shards = count,
            cpus,
            "more shards than CPUs: running unpinned"
        );
    }
    let handles = if options.pin && count <= cpus {
        match start(PoolPlacement::MaxSpread(count, None)) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pin shards to CPUs; running unpinned");
                start(PoolPlacement::Unbound(count)).map_err(to_io)?
            }
        }
    } else {
        start(PoolPlacement::Unbound(count)).map_err(to_io)?
    };
    for result in handles.join_all() {
        result.map_err(to_io)?;
    }
    Ok(())
}

fn to_io(e: glommio::GlommioError<()>) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_shard_is_stable_and_in_range() {
        for n in 1..8 {
            for i in 0..200 {
                let key = format!("live/room{i}");
                let a = home_shard(&key, n);
                assert!(a < n);
                assert_eq!(a, home_shard(&key, n));
            }
        }
    }

    #[test]
    fn home_shard_spreads_keys() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[home_shard(&format!("live/s{i}"), 4)] += 1;
        }
        for c in counts {
            assert!(c > 800, "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn runtime_starts_every_shard_and_the_mesh_delivers() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let got = Arc::new(AtomicUsize::new(0));
        let got2 = got.clone();
        run::<usize, _, _>(
            Options {
                shards: 2,
                pin: false,
                mesh_capacity: 8,
            },
            move |ctx| {
                let got = got2.clone();
                async move {
                    let other = 1 - ctx.id;
                    ctx.mesh.try_send(other, ctx.id + 100).expect("send");
                    let (from, v) = ctx.mesh.recv_first().await.expect("recv");
                    assert_eq!(from, other);
                    assert_eq!(v, other + 100);
                    got.fetch_add(1, Ordering::SeqCst);
                }
            },
        )
        .expect("run");
        assert_eq!(got.load(Ordering::SeqCst), 2);
    }
}
