//! Recent events an operator should see (a node went dead, a repair
//! finished, an audit failed, a volume is filling): a bounded ring, oldest
//! dropped first, each event numbered so a reader can ask for what is new.

use std::collections::VecDeque;

use serde::Serialize;

/// How serious an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Something is wrong or about to be.
    Warning,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The node started.
    Started,
    /// Another node turned dead in the node table.
    NodeDead,
    /// A dead node reports again.
    NodeBack,
    /// Repair made the copies a chunk was missing.
    RepairFinished,
    /// Repair found too few targets for a chunk.
    RepairIncomplete,
    /// A co-holder failed an audit this node ran.
    AuditFailed,
    /// A chunk was handed to another node and released here.
    Offloaded,
    /// A volume holds more than [`super::FILLING_PCT`] of its donation.
    VolumeFilling,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Position in the node's event sequence (1, 2, …).
    pub seq: u64,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: u64,
    /// How serious it is.
    pub level: Level,
    /// What happened.
    pub kind: EventKind,
    /// One line for a person.
    pub message: String,
}

/// The last `cap` events.
#[derive(Clone, Debug)]
pub struct EventLog {
    cap: usize,
    next_seq: u64,
    events: VecDeque<Event>,
}

impl EventLog {
    /// An empty log keeping at most `cap` events.
    pub fn new(cap: usize) -> Self {
        EventLog {
            cap: cap.max(1),
            next_seq: 1,
            events: VecDeque::new(),
        }
    }

    /// Append an event, dropping the oldest when full; returns its seq.
    pub fn push(&mut self, at_ms: u64, level: Level, kind: EventKind, message: String) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.events.len() == self.cap {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            seq,
            at_ms,
            level,
            kind,
            message,
        });
        seq
    }

    /// Events with `seq > after`, newest first, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Event> {
        self.events
            .iter()
            .rev()
            .take_while(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many events of `kind` the log still holds.
    pub fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_events_newest_first() {
        let mut log = EventLog::new(3);
        for i in 0..5 {
            log.push(i, Level::Info, EventKind::NodeDead, format!("e{i}"));
        }
        let all = log.since(0, 10);
        let msgs: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["e4", "e3", "e2"], "oldest dropped, newest first");
        assert_eq!(all[0].seq, 5);
        assert_eq!(log.since(4, 10).len(), 1, "only what is new after seq 4");
        assert_eq!(log.since(0, 2).len(), 2, "limit");
        assert_eq!(log.count(EventKind::NodeDead), 3);
        assert_eq!(log.count(EventKind::AuditFailed), 0);
    }
}
