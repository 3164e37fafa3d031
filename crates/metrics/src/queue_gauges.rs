//! Queue sizes and oldest ages, read at each scrape from the queue directories
//! (cwd is queue_directory after confinement): one directory listing and one stat per
//! file, no queue file is opened.

use rostfix_proto::ALL_QUEUES;
use rostfix_queue::{list_queue, queue_path};
use std::path::Path;
use std::time::SystemTime;

type Series = Vec<(Vec<(String, String)>, f64)>;

/// Per queue: message count and age in seconds of the oldest file.
pub struct QueueGauges {
    pub counts: Series,
    pub oldest: Series,
}

/// Reads every queue under `root`; a queue that cannot be listed is left out (and
/// logged), so one unreadable directory does not hide the others.
pub fn read(root: &Path) -> QueueGauges {
    let now = SystemTime::now();
    let mut counts = Vec::new();
    let mut oldest = Vec::new();
    for queue in ALL_QUEUES {
        let ids = match list_queue(root, queue) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("metrics: cannot list the {queue} queue: {e}");
                continue;
            }
        };
        let age = ids
            .iter()
            .filter_map(|id| std::fs::metadata(queue_path(root, queue, id)).ok())
            .filter_map(|m| m.modified().ok())
            .filter_map(|t| now.duration_since(t).ok())
            .max()
            .map_or(0.0, |d| d.as_secs_f64());
        let label = vec![("queue".to_string(), queue.as_str().to_string())];
        counts.push((label.clone(), ids.len() as f64));
        oldest.push((label, age));
    }
    QueueGauges { counts, oldest }
}
