//! Reactions (docs/API-GUIDE.md "Messages"): one emoji (a single grapheme cluster that is an emoji, by the Unicode
//! emoji data of the `emojis` crate) or a shortcode of `[a-z0-9_+-]`, 1 to 32 characters; each user has
//! each reaction at most once per message; at most [`MAX_DISTINCT`] distinct reactions per message;
//! none on a deleted message. The members hear of every change with `reaction.added` / `.removed`.

use unicode_segmentation::UnicodeSegmentation;

use super::conversations::membership;
use super::messages::message_not_found;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::realtime::{events, Outgoing, Published};
use crate::store::Reacted;
use crate::validate;

/// Distinct reactions per message max 20 (docs/API-GUIDE.md "Limits").
pub const MAX_DISTINCT: u64 = 20;
const MAX_CHARS: usize = 32;

/// The reaction as given, if it is one.
pub fn reaction(raw: &str) -> Result<String, ApiError> {
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_CHARS {
        return Err(ApiError::invalid(
            "reaction",
            format!("must be 1 to {MAX_CHARS} characters: one emoji, or a shortcode of a-z, 0-9, '_', '+' and '-'"),
        ));
    }
    if raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b))
    {
        return Ok(raw.to_owned());
    }
    let one_grapheme = raw.graphemes(true).count() == 1;
    // The emoji data lists fully qualified sequences; a client may send one without its U+FE0F.
    let is_emoji = emojis::get(raw).is_some() || emojis::get(&format!("{raw}\u{FE0F}")).is_some();
    if one_grapheme && is_emoji {
        return Ok(raw.to_owned());
    }
    Err(ApiError::invalid(
        "reaction",
        "must be one emoji, or a shortcode of a-z, 0-9, '_', '+' and '-'",
    ))
}

/// `PUT .../reactions/{reaction}`: idempotent.
pub async fn add(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    raw: &str,
) -> Result<Published<()>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let reaction = reaction(raw)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    super::mutes::refuse_if_muted(context, &member)?;
    match context
        .store
        .put_reaction(conversation_id, &message_id, me, &reaction, MAX_DISTINCT)
        .await?
    {
        Reacted::Added => {
            let event = events::reaction("reaction.added", conversation_id, &message_id, me, &reaction);
            Ok(Published::new(
                (),
                vec![Outgoing::to_conversation(&conversation, event)],
            ))
        }
        Reacted::Already => Ok(Published::quiet(())),
        Reacted::Refused => {
            let message = context
                .store
                .get_message(conversation_id, &message_id)
                .await?
                .ok_or_else(message_not_found)?;
            Err(if message.deleted {
                ApiError::Conflict("A deleted message cannot be reacted to.".to_owned())
            } else {
                ApiError::Conflict(format!(
                    "This message has {MAX_DISTINCT} different reactions already; add one of those instead."
                ))
            })
        }
    }
}

/// `DELETE .../reactions/{reaction}`: idempotent.
pub async fn remove(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    raw: &str,
) -> Result<Published<()>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let reaction = reaction(raw)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    super::mutes::refuse_if_muted(context, &member)?;
    if context
        .store
        .remove_reaction(conversation_id, &message_id, me, &reaction)
        .await?
    {
        let event = events::reaction("reaction.removed", conversation_id, &message_id, me, &reaction);
        return Ok(Published::new(
            (),
            vec![Outgoing::to_conversation(&conversation, event)],
        ));
    }
    // Nothing to take back; a message that is not there at all is still a 404.
    context
        .store
        .get_message(conversation_id, &message_id)
        .await?
        .ok_or_else(message_not_found)?;
    Ok(Published::quiet(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_and_shortcodes_are_reactions() {
        for good in [
            "👍",
            "❤️",
            "❤",
            "👍🏽",
            "👨‍👩‍👧",
            "🇯🇵",
            "+1",
            "thumbs_up",
            "party-parrot",
            &"a".repeat(32),
        ] {
            assert_eq!(reaction(good).unwrap(), good, "{good}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "👍👍",
            "👍a",
            "Thumbs",
            "thumbs up",
            "a/b",
            "é",
            "x\u{0}",
            &"a".repeat(33),
            "1️⃣2️⃣",
        ] {
            assert!(reaction(bad).is_err(), "{bad:?}");
        }
    }
}
