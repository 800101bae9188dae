//! The text normalisation search uses on both sides: the words a message is indexed under and the
//! terms of a query go through the same steps, so whatever one side folds away the other does too.
//!
//! 1. Lowercase (Unicode's full mapping, before decomposition: `İ` lowercases to `i` + a combining dot,
//!    which step 2 then drops).
//! 2. NFKD (compatibility decomposition: `ﬁ` → `fi`, full-width `Ａ` → `A`, `é` → `e` + U+0301), then
//!    every combining mark (General Category M) is dropped: `Café` ~ `cafe`, `Ёлка` ~ `елка`, and also
//!    Japanese `が` ~ `か` (the voicing mark is a combining mark too).
//! 3. NFC, so what is left is stored compactly (Hangul recomposes into syllables).
//! 4. Unicode word segmentation (UAX #29, `unicode_words`): letters and digits, punctuation and spaces
//!    dropped. UAX #29 does not split Chinese or Japanese into dictionary words: a run of ideographs (or
//!    of hiragana) becomes one word per character (`東京` → `東`, `京`), katakana runs stay whole. A
//!    query term that segments into several words therefore becomes several terms, AND-ed like the
//!    others, so `東京` finds a message with `東京` in it (and, more loosely, one with both characters).

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// `text` lowercased, decomposed, without combining marks, recomposed.
pub fn fold(text: &str) -> String {
    let lower = text.to_lowercase();
    let stripped: String = lower.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    stripped.nfc().collect()
}

/// The normalised words of `text`, in order, repeats included.
pub fn words(text: &str) -> Vec<String> {
    fold(text).unicode_words().map(str::to_owned).collect()
}

/// The distinct normalised words of `text`, in order of first appearance.
pub fn distinct_words(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    words(text).into_iter().filter(|w| seen.insert(w.clone())).collect()
}

/// The first `max` characters (Unicode scalar values) of `word`.
pub fn cut(word: &str, max: usize) -> &str {
    match word.char_indices().nth(max) {
        Some((at, _)) => &word[..at],
        None => word,
    }
}

/// Whether some word of `words` starts with every term of `terms` (AND of prefix matches).
pub fn matches_all<S: AsRef<str>>(words: &[S], terms: &[String]) -> bool {
    terms
        .iter()
        .all(|term| words.iter().any(|word| word.as_ref().starts_with(term.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(words("Café au LAIT"), ["cafe", "au", "lait"]);
        assert_eq!(words("naïve façade Ångström"), ["naive", "facade", "angstrom"]);
        assert_eq!(words("ＡＢＣ ﬁne"), ["abc", "fine"], "compatibility forms");
        assert_eq!(words("İstanbul"), ["istanbul"], "a lowercase that adds a mark");
        assert_eq!(words("crème brûlée"), words("CREME BRULEE"));
    }

    #[test]
    fn any_script() {
        assert_eq!(words("Привет, мир!"), ["привет", "мир"]);
        assert_eq!(words("Ёлка"), ["елка"]);
        assert_eq!(words("Γειά σου Κόσμε"), ["γεια", "σου", "κοσμε"]);
        assert_eq!(words("東京に行きます"), ["東", "京", "に", "行", "き", "ま", "す"]);
        assert_eq!(
            words("東京"),
            ["東", "京"],
            "a query term of ideographs is one term per character"
        );
        assert_eq!(
            words("カタカナ テスト"),
            ["カタカナ", "テスト"],
            "katakana runs stay whole"
        );
        assert_eq!(words("안녕하세요 세계"), ["안녕하세요", "세계"], "Hangul recomposes");
        assert_eq!(words("مرحبا بالعالم"), ["مرحبا", "بالعالم"]);
    }

    #[test]
    fn punctuation_and_spaces_are_not_words() {
        assert_eq!(
            words("  hello,   world... (it's 2026)!  "),
            ["hello", "world", "it's", "2026"]
        );
        assert!(words("!!! ... ---").is_empty());
        assert!(words("").is_empty());
        assert_eq!(distinct_words("the cat and the hat"), ["the", "cat", "and", "hat"]);
    }

    #[test]
    fn cuts_count_characters_not_bytes() {
        assert_eq!(cut("привет", 3), "при");
        assert_eq!(cut("東京タワー", 2), "東京");
        assert_eq!(cut("ab", 3), "ab");
    }

    #[test]
    fn every_term_must_start_some_word() {
        let message = distinct_words("See you tomorrow at the Café");
        let terms = |q: &str| distinct_words(q);
        assert!(matches_all(&message, &terms("tomo")));
        assert!(matches_all(&message, &terms("cafe TOMORROW")));
        assert!(!matches_all(&message, &terms("cafe tonight")));
        assert!(!matches_all(&message, &terms("morrow")), "prefixes only");
        assert!(matches_all(&distinct_words("Привет всем"), &terms("привет")));
        assert!(matches_all(&distinct_words("東京タワーへ"), &terms("東京")));
    }
}
