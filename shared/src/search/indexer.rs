//! What a change to a message does to the index (see the module above for the key design): the
//! message's one index item is put with the words of its last image, or deleted when that image has
//! none (encrypted, deleted, no letters or digits, or the item removed: a purged conversation).
//! Nothing is written when every image the batch held of it, and the one before the batch (no words
//! before an INSERT), had the same words (a reaction, a reply count, a repeat of the same text, an
//! encrypted message sent or deleted). The test below replays every run of records, split into batches
//! every way and retried from every record, and checks that each ends where its last image says.
//!
//! Idempotent: the one write is a put or delete of a key derived from the message id, with what the
//! last image says, so a record applied twice leaves what it left the first time, and replaying a run
//! of records in stream order (what Lambda does after a failure) ends where the last one says.

use std::collections::BTreeSet;

use serde_dynamo::AttributeValue;

use super::{text, STORED_WORD_MAX, WORDS_BUDGET};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{IndexWrite, MessageRecord};

/// The searchable part of one image of a message item: its distinct normalised words (each cut to
/// [`STORED_WORD_MAX`] characters), none when it is encrypted or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    pub words: Vec<String>,
}

impl Indexed {
    /// The words of a message with this body and flags.
    pub fn of(body: &str, encrypted: bool, deleted: bool) -> Self {
        if encrypted || deleted {
            return Indexed::default();
        }
        let mut seen = BTreeSet::new();
        let words = text::distinct_words(body)
            .into_iter()
            .map(|w| text::cut(&w, STORED_WORD_MAX).to_owned())
            .filter(|w| seen.insert(w.clone()))
            .collect();
        Indexed { words }
    }

    pub fn of_record(record: &MessageRecord) -> Self {
        Self::of(&record.body, record.encrypted, record.deleted)
    }

    /// From a stream image (`NewImage`/`OldImage`); absent attributes read as empty/false, so the
    /// worker copes with message items of any version.
    pub fn of_image(image: &std::collections::HashMap<String, AttributeValue>) -> Self {
        let flag = |name: &str| matches!(image.get(name), Some(AttributeValue::Bool(true)));
        let body = match image.get("body") {
            Some(AttributeValue::S(body)) => body.as_str(),
            _ => "",
        };
        Self::of(body, flag("encrypted"), flag("deleted"))
    }

    /// The index item's `words`: every word with a space before and after it (`" see you "`, so that
    /// "a word starts with `tomo`" is "the list contains `" tomo"`"), or `None` when that would pass
    /// [`WORDS_BUDGET`] bytes: the item then stays under 1 KB (one write unit) without its list, and a
    /// query checks that message against its text instead.
    pub fn stored(&self) -> Option<String> {
        let length = self.words.iter().map(|w| w.len() + 1).sum::<usize>() + 1;
        (length <= WORDS_BUDGET).then(|| format!(" {} ", self.words.join(" ")))
    }
}

/// The index write that takes one message from the state of `before` (the image before the batch's
/// first record, no words for an INSERT, then every image the batch held of it but the last, oldest
/// first: what earlier, possibly applied, records may have put) to `after` (its last image; empty
/// words when removed), or `None` when nothing needs writing. An empty `before` (a back-fill, where
/// nothing is known of the item) always writes.
pub fn change(conversation_id: &str, message_id: &str, before: &[Indexed], after: &Indexed) -> Option<IndexWrite> {
    // Nothing searchable changed (a reaction, a reply count, a read of the same text, an encrypted
    // message sent or deleted). An INSERT's "before" is an image without words, so a message sent and
    // reacted to in one batch is written.
    if !before.is_empty() && before.iter().all(|b| b.words == after.words) {
        return None;
    }
    if after.words.is_empty() {
        return Some(IndexWrite::Delete {
            conversation_id: conversation_id.to_owned(),
            message_id: message_id.to_owned(),
        });
    }
    Some(IndexWrite::Put {
        conversation_id: conversation_id.to_owned(),
        message_id: message_id.to_owned(),
        words: after.stored(),
    })
}

/// Applies index writes (one per message, of distinct messages) in as few calls as they allow.
pub async fn apply(context: &AppContext, writes: &[IndexWrite]) -> Result<(), ApiError> {
    context.store.write_index(writes).await
}

/// Indexes a stored message as it is now (a back-fill: the stream does this for every message it
/// sees change): its item is put, or deleted when it has no words. One write.
pub async fn index(context: &AppContext, record: &MessageRecord) -> Result<usize, ApiError> {
    let writes: Vec<IndexWrite> = change(&record.conversation_id, &record.id, &[], &Indexed::of_record(record))
        .into_iter()
        .collect();
    apply(context, &writes).await?;
    Ok(writes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(words: &str) -> Option<IndexWrite> {
        Some(IndexWrite::Put {
            conversation_id: "C".to_owned(),
            message_id: "M".to_owned(),
            words: Some(words.to_owned()),
        })
    }

    fn delete() -> Option<IndexWrite> {
        Some(IndexWrite::Delete {
            conversation_id: "C".to_owned(),
            message_id: "M".to_owned(),
        })
    }

    fn of(body: &str) -> Indexed {
        Indexed::of(body, false, false)
    }

    #[test]
    fn a_new_message_puts_one_item_with_its_distinct_words() {
        let after = of("Café café CAFÉ at");
        assert_eq!(after.words, ["cafe", "at"]);
        assert_eq!(change("C", "M", &[], &after), put(" cafe at "));
    }

    #[test]
    fn words_are_stored_cut() {
        let after = of("Supercalifragilisticexpialidocious-ish words");
        assert_eq!(after.words[0].chars().count(), STORED_WORD_MAX);
        assert_eq!(
            after.stored().as_deref(),
            Some(" supercalifragilisticexpialidocio ish words ")
        );
    }

    #[test]
    fn an_edit_puts_the_new_words_in_place_of_the_old() {
        let old = of("see you tomorrow");
        let new = of("see you today");
        assert_eq!(
            change("C", "M", std::slice::from_ref(&old), &new),
            put(" see you today ")
        );
    }

    #[test]
    fn deleted_and_encrypted_messages_have_no_item() {
        let old = of("secret plans");
        let deleted = Indexed::of("secret plans", false, true);
        assert!(deleted.words.is_empty());
        assert_eq!(change("C", "M", std::slice::from_ref(&old), &deleted), delete());
        let encrypted = Indexed::of("c2VjcmV0", true, false);
        let insert = Indexed::default();
        assert_eq!(
            change("C", "M", std::slice::from_ref(&insert), &encrypted),
            None,
            "sent encrypted: nothing to write"
        );
        assert_eq!(
            change("C", "M", &[], &encrypted),
            delete(),
            "a back-fill knows nothing: it deletes"
        );
        assert_eq!(
            change("C", "M", std::slice::from_ref(&encrypted), &Indexed::default()),
            None,
            "an encrypted message deleted or purged: nothing was ever written"
        );
        assert_eq!(
            change("C", "M", std::slice::from_ref(&insert), &of("!!! ...")),
            None,
            "no words, no item"
        );
        assert_eq!(change("C", "M", std::slice::from_ref(&old), &of("!!! ...")), delete());
    }

    #[test]
    fn a_removed_message_takes_its_item_with_it() {
        let old = of("see you tomorrow");
        assert_eq!(
            change("C", "M", std::slice::from_ref(&old), &Indexed::default()),
            delete()
        );
    }

    #[test]
    fn a_change_that_keeps_the_words_writes_nothing() {
        let same = of("hello there");
        assert_eq!(change("C", "M", &[same.clone(), same.clone()], &same), None);
        assert_eq!(
            change("C", "M", &[of("Hello THERE")], &same),
            None,
            "the words, not the text"
        );
        assert_eq!(
            change("C", "M", &[], &same),
            put(" hello there "),
            "an INSERT (no image before it) is always written"
        );
    }

    #[test]
    fn a_message_sent_and_reacted_to_in_one_batch_is_indexed() {
        // INSERT (no old image: read as no words) then a MODIFY that keeps the words.
        let sent = of("hello there");
        assert_eq!(
            change("C", "M", &[Indexed::default(), sent.clone()], &sent),
            put(" hello there ")
        );
    }

    #[test]
    fn a_batch_of_several_images_ends_where_the_last_says() {
        // INSERT "alpha", MODIFY to "beta", MODIFY to "gamma" in one batch, possibly applied before.
        let images = [of("alpha"), of("beta")];
        assert_eq!(change("C", "M", &images, &of("gamma")), put(" gamma "));
        // Sent, edited, deleted in one batch: the item may exist (an earlier try), so it goes.
        let images = [of("alpha"), of("beta")];
        assert_eq!(change("C", "M", &images, &Indexed::default()), delete());
        // Edited back to the words it had first: the middle image may have been applied.
        let images = [of("alpha"), of("beta")];
        assert_eq!(change("C", "M", &images, &of("alpha")), put(" alpha "));
        // Encrypted then decrypted-by-edit is not a thing, but a message whose words appear later is.
        let images = [of("..."), of("...")];
        assert_eq!(change("C", "M", &images, &of("now words")), put(" now words "));
    }

    /// The index item of one message as a map would hold it: absent, or present with its words.
    type State = Option<Option<String>>;

    /// Applies one batch of a message's records `(old image, new image)` as the worker does.
    fn apply_batch(state: &mut State, records: &[(Option<Indexed>, Indexed)]) {
        let Some(((first_old, _), _)) = records.split_first() else {
            return;
        };
        // As the worker reads it: no old image (an INSERT) is an image without words.
        let mut before: Vec<Indexed> = vec![first_old.clone().unwrap_or_default()];
        before.extend(records[..records.len() - 1].iter().map(|(_, new)| new.clone()));
        let after = &records[records.len() - 1].1;
        match change("C", "M", &before, after) {
            Some(IndexWrite::Put { words, .. }) => *state = Some(words),
            Some(IndexWrite::Delete { .. }) => *state = None,
            None => {}
        }
    }

    fn expected(image: &Indexed) -> State {
        (!image.words.is_empty()).then(|| image.stored())
    }

    #[test]
    fn any_split_into_batches_and_any_replay_ends_where_the_last_image_says() {
        let deleted = Indexed::of("gone", false, true);
        let encrypted = Indexed::of("c2VjcmV0", true, false);
        let runs: Vec<Vec<Indexed>> = vec![
            vec![
                of("first draft"),
                of("first draft"),
                of("second draft"),
                deleted.clone(),
            ],
            vec![of("alpha"), of("beta"), of("alpha")],
            vec![of("alpha"), of("Alpha!"), of("beta gamma")],
            vec![encrypted.clone(), encrypted.clone(), Indexed::default()],
            vec![of("..."), of("now words"), of("...")],
            vec![
                of("short"),
                of(&(0..400).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")),
                of("short"),
            ],
            vec![of("purged"), Indexed::default()],
        ];
        for images in runs {
            // Record 0 is the INSERT (no old image); record k changes image k-1 into image k.
            let records: Vec<(Option<Indexed>, Indexed)> = images
                .iter()
                .enumerate()
                .map(|(k, new)| (k.checked_sub(1).map(|p| images[p].clone()), new.clone()))
                .collect();
            let last = expected(images.last().unwrap());
            for split in 1..=records.len() {
                let mut state = None;
                apply_batch(&mut state, &records[..split]);
                assert_eq!(state, expected(&images[split - 1]), "{images:?} up to {split}");
                // Lambda retries from any record up to the split (those after it were never applied).
                for replay in 0..split {
                    let mut replayed = state.clone();
                    apply_batch(&mut replayed, &records[replay..]);
                    assert_eq!(replayed, last, "{images:?}: applied to {split}, replayed from {replay}");
                }
                // One record at a time, each seen twice.
                let mut single = None;
                for record in &records {
                    apply_batch(&mut single, std::slice::from_ref(record));
                    apply_batch(&mut single, std::slice::from_ref(record));
                }
                assert_eq!(single, last, "{images:?} one record at a time");
            }
        }
    }

    #[test]
    fn a_long_message_stores_no_word_list_and_stays_one_write_unit() {
        let body: Vec<String> = (0..400).map(|i| format!("word{i}")).collect();
        let long = of(&body.join(" "));
        assert_eq!(long.stored(), None);
        assert_eq!(
            change("C", "M", &[], &long),
            Some(IndexWrite::Put {
                conversation_id: "C".to_owned(),
                message_id: "M".to_owned(),
                words: None
            })
        );
        // The most five-letter words that fit (a space each, and one at the end), and one more.
        let words = |n: usize| (0..n).map(|i| format!("w{i:04}")).collect::<Vec<_>>().join(" ");
        let fit = (WORDS_BUDGET - 1) / 6;
        assert!(of(&words(fit)).stored().is_some_and(|s| s.len() <= WORDS_BUDGET));
        assert_eq!(of(&words(fit + 1)).stored(), None);
        let short = of("a few words");
        assert_eq!(short.stored().as_deref(), Some(" a few words "));
    }
}
