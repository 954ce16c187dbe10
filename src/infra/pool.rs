//! Pool: the one way matriochka runs jobs on threads. Workers take the next job index from a
//! shared counter; results come back in job order, so output stays the same bytes whatever the
//! scheduling. A worker may carry state from job to job (`init`, then `finish` when it runs out).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// As many workers as cores, at most one per job, at least one.
pub(crate) fn cores_for(jobs: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs)
        .max(1)
}

/// Runs `job(state, index)` for every index below `jobs` on `workers` threads; each worker's
/// state comes from `init` and goes to `finish` when no job is left. Results in job order.
pub(crate) fn run<S, T: Send>(
    workers: usize,
    jobs: usize,
    init: impl Fn() -> S + Sync,
    job: impl Fn(&mut S, usize) -> T + Sync,
    finish: impl Fn(S) + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..jobs).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.max(1)) {
            scope.spawn(|| {
                let mut state = init();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= jobs {
                        break;
                    }
                    let result = job(&mut state, index);
                    *slots[index].lock().unwrap() = Some(result);
                }
                finish(state);
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap().expect("every job ran"))
        .collect()
}

/// [`run`] without per-worker state.
pub(crate) fn map<T: Send>(workers: usize, jobs: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    run(workers, jobs, || (), |(), index| job(index), |()| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_job_order_and_every_worker_finishes() {
        let finished = Mutex::new(Vec::new());
        let out = run(
            3,
            10,
            || 0usize,
            |count, index| {
                *count += 1;
                index * index
            },
            |count| finished.lock().unwrap().push(count),
        );
        assert_eq!(out, (0..10).map(|i| i * i).collect::<Vec<_>>());
        let finished = finished.into_inner().unwrap();
        assert_eq!(finished.len(), 3);
        assert_eq!(finished.iter().sum::<usize>(), 10);
    }

    #[test]
    fn no_jobs_and_more_workers_than_jobs() {
        assert_eq!(map(4, 0, |i| i), Vec::<usize>::new());
        assert_eq!(map(8, 2, |i| i + 1), [1, 2]);
        assert_eq!(cores_for(0), 1);
    }
}
