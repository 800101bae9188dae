//! Where each stream mapping has got to in each shard, kept in a JSON file beside DynamoDB Local's data
//! (when the stack keeps its data), so that a restart carries on where the last run stopped, as an AWS
//! event source mapping keeps its checkpoint. The file is rewritten at most once a second, and when the
//! stack stops; a crash between writes means the last second's records are delivered again, which
//! at-least-once delivery allows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// Everything up to and including this sequence number is done.
    After(String),
    /// The shard is closed and done.
    Finished,
}

pub struct Checkpoints {
    /// None: nothing is kept (an in-memory database forgets its stream too).
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Mapping key -> (stream label, shard -> checkpoint).
    mappings: BTreeMap<String, (String, BTreeMap<String, Checkpoint>)>,
    dirty: bool,
}

impl Checkpoints {
    /// Reads what an earlier run kept in `path`; an unreadable file is started over, with the reason.
    pub fn open(path: Option<PathBuf>) -> (Self, Option<String>) {
        let mut state = State::default();
        let mut problem = None;
        if let Some(path) = &path {
            match std::fs::read_to_string(path).map(|text| parse(&text)) {
                Ok(Ok(mappings)) => state.mappings = mappings,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => problem = Some(format!("{}: {e}", path.display())),
                Ok(Err(e)) => problem = Some(format!("{}: {e}", path.display())),
            }
        }
        let checkpoints = Checkpoints {
            path,
            state: Mutex::new(state),
        };
        (checkpoints, problem)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard checkpoints a mapping kept on this stream (none when the stream is another one, say a
    /// table created again).
    pub fn of(&self, mapping: &str, label: &str) -> BTreeMap<String, Checkpoint> {
        match self.lock().mappings.get(mapping) {
            Some((kept_label, shards)) if kept_label == label => shards.clone(),
            _ => BTreeMap::new(),
        }
    }

    pub fn set(&self, mapping: &str, label: &str, shard: &str, checkpoint: Checkpoint) {
        if self.path.is_none() {
            return;
        }
        let mut state = self.lock();
        let entry = state
            .mappings
            .entry(mapping.to_owned())
            .or_insert_with(|| (label.to_owned(), BTreeMap::new()));
        if entry.0 != label {
            *entry = (label.to_owned(), BTreeMap::new());
        }
        entry.1.insert(shard.to_owned(), checkpoint);
        state.dirty = true;
    }

    /// Writes the file if anything changed since the last write (through a temporary file, so a crash
    /// leaves the old one whole).
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let text = {
            let mut state = self.lock();
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            render(&state.mappings)
        };
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)
    }
}

fn render(mappings: &BTreeMap<String, (String, BTreeMap<String, Checkpoint>)>) -> String {
    let mut out = Map::new();
    for (mapping, (label, shards)) in mappings {
        let shards: Map<String, Value> = shards
            .iter()
            .map(|(shard, checkpoint)| {
                let value = match checkpoint {
                    Checkpoint::After(sequence) => json!({ "after": sequence }),
                    Checkpoint::Finished => json!({ "finished": true }),
                };
                (shard.clone(), value)
            })
            .collect();
        out.insert(mapping.clone(), json!({ "streamLabel": label, "shards": shards }));
    }
    serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default()
}

type Kept = BTreeMap<String, (String, BTreeMap<String, Checkpoint>)>;

fn parse(text: &str) -> Result<Kept, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mappings = value.as_object().ok_or("not a JSON object")?;
    let mut kept = BTreeMap::new();
    for (mapping, entry) in mappings {
        let label = entry["streamLabel"].as_str().ok_or("a mapping without streamLabel")?;
        let mut shards = BTreeMap::new();
        for (shard, checkpoint) in entry["shards"].as_object().into_iter().flatten() {
            let checkpoint = match (checkpoint["after"].as_str(), checkpoint["finished"].as_bool()) {
                (Some(sequence), _) => Checkpoint::After(sequence.to_owned()),
                (None, Some(true)) => Checkpoint::Finished,
                _ => return Err(format!("shard {shard}: neither after nor finished")),
            };
            shards.insert(shard.clone(), checkpoint);
        }
        kept.insert(mapping.clone(), (label.to_owned(), shards));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_a_restart_of_the_same_stream_only() {
        let dir = std::env::temp_dir().join(format!("parley-checkpoints-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stream-checkpoints.json");
        let _ = std::fs::remove_file(&path);
        let (first, problem) = Checkpoints::open(Some(path.clone()));
        assert_eq!(problem, None, "no file yet is no problem");
        first.set("F/Changes", "label-1", "shard-a", Checkpoint::After("0007".into()));
        first.set("F/Changes", "label-1", "shard-0", Checkpoint::Finished);
        first.flush().unwrap();
        let (again, _) = Checkpoints::open(Some(path.clone()));
        assert_eq!(
            again.of("F/Changes", "label-1"),
            BTreeMap::from([
                ("shard-0".to_owned(), Checkpoint::Finished),
                ("shard-a".to_owned(), Checkpoint::After("0007".into())),
            ])
        );
        assert!(
            again.of("F/Changes", "label-2").is_empty(),
            "another stream starts over"
        );
        assert!(again.of("G/Other", "label-1").is_empty());
        std::fs::write(&path, "{oops").unwrap();
        let (broken, problem) = Checkpoints::open(Some(path.clone()));
        assert!(problem.is_some_and(|p| p.contains("not JSON")));
        assert!(broken.of("F/Changes", "label-1").is_empty(), "started over");
        let (memory, _) = Checkpoints::open(None);
        memory.set("F/Changes", "label-1", "shard-a", Checkpoint::Finished);
        memory.flush().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
