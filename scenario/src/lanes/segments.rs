//! Tracks built from observations in time order.

use crate::record::{Mark, Segment, Tone, Track};

use super::Snapshot;

/// A state a track shows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct State {
    pub(super) text: String,
    pub(super) tone: Tone,
}

pub(super) fn state(text: impl Into<String>, tone: Tone) -> State {
    State {
        text: text.into(),
        tone,
    }
}

/// Segments of one track, built from observations in time order.
#[derive(Default)]
pub(super) struct Segments {
    done: Vec<Segment>,
    open: Option<(u64, State)>,
}

impl Segments {
    /// At `at` the track shows `state` (None: nothing).
    pub(super) fn observe(&mut self, at: u64, state: Option<State>) {
        if let (Some((_, cur)), Some(new)) = (&self.open, &state)
            && cur == new
        {
            return;
        }
        self.close(at);
        self.open = state.map(|s| (at, s));
    }

    fn close(&mut self, at: u64) {
        if let Some((start, s)) = self.open.take() {
            let end = at.max(start);
            if end > start {
                self.done.push(Segment {
                    start_ms: start,
                    end_ms: end,
                    text: s.text,
                    tone: s.tone,
                });
            }
        }
    }

    pub(super) fn finish(mut self, end_ms: u64) -> Vec<Segment> {
        self.close(end_ms);
        self.done
    }
}

pub(super) fn track(label: &str, segments: Vec<Segment>, mut marks: Vec<Mark>) -> Track {
    marks.sort_by_key(|m| m.at_ms);
    Track {
        label: label.to_string(),
        segments,
        marks,
    }
}

/// The snapshots sorted by time, keeping the given order among equal times.
pub(super) fn by_time(snaps: &[Snapshot]) -> Vec<&Snapshot> {
    let mut v: Vec<&Snapshot> = snaps.iter().collect();
    v.sort_by_key(|s| s.at_ms);
    v
}
