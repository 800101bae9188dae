//! Local values for the template's generated secrets: what CloudFormation's `GenerateSecretString`
//! makes at the first deployment (the VAPID secret), made here at the first start, and kept with the
//! data under `.local/` (`secrets.json`, readable by its owner only) so a restart keeps them: browsers'
//! push subscriptions are bound to the VAPID key. A stack in memory makes new ones every start. Values
//! given with `--secret` win.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dynamodb_local::Storage;
use parley_template::Template;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `given` with a value for every generated key of the template's secrets it lacks.
pub fn fill(
    template: &Template,
    storage: &Storage,
    mut given: BTreeMap<String, String>,
) -> std::io::Result<BTreeMap<String, String>> {
    let file = match storage {
        Storage::Directory(data) => Some(kept_in(data)),
        Storage::InMemory => None,
    };
    let mut kept: BTreeMap<String, String> = file
        .as_deref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut changed = false;
    for (key, length) in generated_keys(template) {
        if given.contains_key(&key) {
            continue;
        }
        let value = match kept.get(&key) {
            Some(value) => value.clone(),
            None => {
                let value = random_text(length);
                kept.insert(key.clone(), value.clone());
                changed = true;
                value
            }
        };
        given.insert(key, value);
    }
    if let (Some(file), true) = (file, changed) {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_private(&file, &serde_json::to_string_pretty(&kept).unwrap_or_default())?;
    }
    Ok(given)
}

/// `<data>/../secrets.json`: beside the table's data, under `.local/`.
fn kept_in(data: &Path) -> PathBuf {
    data.parent().unwrap_or(data).join("secrets.json")
}

/// `<Secret>.<GenerateStringKey>` and its `PasswordLength` (32 by default, as CloudFormation's).
fn generated_keys(template: &Template) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    for id in template.resource_ids() {
        if template.resource_type(&id) != Some("AWS::SecretsManager::Secret") {
            continue;
        }
        let Some(generate) = template
            .resource(&id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("GenerateSecretString"))
        else {
            continue;
        };
        if let Some(key) = generate.get("GenerateStringKey").and_then(|k| k.as_str()) {
            let length = generate.get("PasswordLength").and_then(|l| l.as_u64()).unwrap_or(32) as usize;
            keys.push((format!("{id}.{key}"), length.max(1)));
        }
    }
    keys
}

fn random_text(length: usize) -> String {
    let mut bytes = vec![0u8; length];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    // 256 = 4 * 62 + 8: rejecting the top 8 values keeps every character equally likely.
    let mut out = String::with_capacity(length);
    let mut pool = bytes.into_iter();
    while out.len() < length {
        let byte = pool.next().unwrap_or_else(|| {
            let mut one = [0u8; 1];
            getrandom::fill(&mut one).expect("the system's random source works");
            one[0]
        });
        if (byte as usize) < 248 {
            out.push(ALPHANUMERIC[byte as usize % ALPHANUMERIC.len()] as char);
        }
    }
    out
}

#[cfg(unix)]
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Resources:
  Vapid:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"previous": "none"}'
        GenerateStringKey: current
        PasswordLength: 64
"#;

    #[test]
    fn generated_values_are_kept_across_starts_unless_in_memory() {
        let dir = std::env::temp_dir().join(format!("parley-local-secrets-{}", std::process::id()));
        let template = Template::parse(TEMPLATE).unwrap();
        let storage = Storage::Directory(dir.join("dynamodb"));
        let first = fill(&template, &storage, BTreeMap::new()).unwrap();
        assert_eq!(first["Vapid.current"].len(), 64);
        assert!(first["Vapid.current"].bytes().all(|b| b.is_ascii_alphanumeric()));
        let again = fill(&template, &storage, BTreeMap::new()).unwrap();
        assert_eq!(again, first);
        let given = fill(
            &template,
            &storage,
            BTreeMap::from([("Vapid.current".to_owned(), "mine".to_owned())]),
        )
        .unwrap();
        assert_eq!(given["Vapid.current"], "mine");
        let memory = fill(&template, &Storage::InMemory, BTreeMap::new()).unwrap();
        assert_ne!(memory["Vapid.current"], first["Vapid.current"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
