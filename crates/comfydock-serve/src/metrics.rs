//! Prometheus text for `/metrics`: queue depth and job counts from the store (so every instance
//! reports the shared queue), job durations, failures and retries.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use crate::job::JobStatus;
use crate::store::QueueStats;

/// Upper bounds (seconds) of the duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Durations of jobs this process completed.
#[derive(Default)]
pub struct Metrics {
    durations: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Records how long a successful job ran (claim to completion).
    pub fn observe_duration(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let mut histogram = self.durations.lock().unwrap_or_else(PoisonError::into_inner);
        for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The exposition text.
    pub fn render(&self, stats: &QueueStats, backends: &[(String, bool)]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP comfydock_queue_depth Jobs waiting to run.");
        let _ = writeln!(out, "# TYPE comfydock_queue_depth gauge");
        let mut workflows: Vec<&str> = stats.jobs.iter().map(|(w, _, _)| w.as_str()).collect();
        workflows.dedup();
        let depth = stats.count(JobStatus::Queued);
        let _ = writeln!(out, "comfydock_queue_depth {depth}");
        let _ = writeln!(out, "# HELP comfydock_jobs Jobs by workflow and status.");
        let _ = writeln!(out, "# TYPE comfydock_jobs gauge");
        for (workflow, status, count) in &stats.jobs {
            let _ = writeln!(
                out,
                "comfydock_jobs{{workflow=\"{}\",status=\"{status}\"}} {count}",
                escape(workflow)
            );
        }
        let event = |kind: &str| {
            stats
                .events
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, n)| *n)
        };
        let _ = writeln!(
            out,
            "# HELP comfydock_job_failures_total Jobs that failed or were dead-lettered."
        );
        let _ = writeln!(out, "# TYPE comfydock_job_failures_total counter");
        let _ = writeln!(
            out,
            "comfydock_job_failures_total{{kind=\"failed\"}} {}",
            event("failed")
        );
        let _ = writeln!(
            out,
            "comfydock_job_failures_total{{kind=\"dead\"}} {}",
            event("dead")
        );
        let _ = writeln!(
            out,
            "# HELP comfydock_job_retries_total Attempts put back in the queue after a transient failure."
        );
        let _ = writeln!(out, "# TYPE comfydock_job_retries_total counter");
        let _ = writeln!(out, "comfydock_job_retries_total {}", event("retrying"));
        let _ = writeln!(
            out,
            "# HELP comfydock_job_duration_seconds Run time of jobs completed by this instance."
        );
        let _ = writeln!(out, "# TYPE comfydock_job_duration_seconds histogram");
        {
            let histogram = self.durations.lock().unwrap_or_else(PoisonError::into_inner);
            for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "comfydock_job_duration_seconds_bucket{{le=\"{bucket}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "comfydock_job_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "comfydock_job_duration_seconds_sum {}", histogram.sum);
            let _ = writeln!(out, "comfydock_job_duration_seconds_count {}", histogram.count);
        }
        let _ = writeln!(
            out,
            "# HELP comfydock_backend_up Whether a ComfyUI backend answers."
        );
        let _ = writeln!(out, "# TYPE comfydock_backend_up gauge");
        for (url, up) in backends {
            let _ = writeln!(
                out,
                "comfydock_backend_up{{backend=\"{}\"}} {}",
                escape(url),
                u8::from(*up)
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_depth_counts_and_histogram() {
        let metrics = Metrics::default();
        metrics.observe_duration(Duration::from_millis(300));
        metrics.observe_duration(Duration::from_secs(4));
        let stats = QueueStats {
            jobs: vec![
                ("txt2img".into(), JobStatus::Queued, 7),
                ("txt2img".into(), JobStatus::Succeeded, 2),
            ],
            events: vec![("retrying".into(), 3), ("dead".into(), 1)],
        };
        let text = metrics.render(&stats, &[("http://127.0.0.1:8188".into(), true)]);
        assert!(text.contains("comfydock_queue_depth 7\n"), "{text}");
        assert!(text.contains("comfydock_jobs{workflow=\"txt2img\",status=\"succeeded\"} 2\n"));
        assert!(text.contains("comfydock_job_retries_total 3\n"));
        assert!(text.contains("comfydock_job_failures_total{kind=\"dead\"} 1\n"));
        assert!(text.contains("comfydock_job_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("comfydock_job_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("comfydock_backend_up{backend=\"http://127.0.0.1:8188\"} 1\n"));
    }
}
