//! age encryption: the recipients a remote's objects are encrypted to (X25519 `age1…` keys and SSH public keys),
//! and the identities (private keys) a restore decrypts with. hookrun never needs an identity to back up.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Why a recipient or identity could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not an age recipient (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)")]
    BadRecipient(String),
    #[error("no recipients: give at least one")]
    NoRecipients,
    #[error("identity file {path}: {what}")]
    Identity { path: PathBuf, what: String },
}

/// The public keys objects are encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Arc<Vec<Box<dyn age::Recipient + Send + Sync>>>,
    /// As given (for `--json` and messages): public keys, never secrets.
    shown: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.shown).finish()
    }
}

impl Recipients {
    /// Parses each line: an `age1…` X25519 recipient or an SSH public key; blank lines and `#` comments are
    /// skipped (the format of `age -R`'s recipients files).
    pub fn parse(lines: &[String]) -> Result<Self, KeyError> {
        let mut keys: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        let mut shown = Vec::new();
        for line in lines.iter().flat_map(|l| l.lines()).map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Ok(key) = age::x25519::Recipient::from_str(line) {
                keys.push(Box::new(key));
            } else if let Ok(key) = age::ssh::Recipient::from_str(line) {
                keys.push(Box::new(key));
            } else {
                return Err(KeyError::BadRecipient(line.to_string()));
            }
            shown.push(line.to_string());
        }
        if keys.is_empty() {
            return Err(KeyError::NoRecipients);
        }
        Ok(Self {
            keys: Arc::new(keys),
            shown,
        })
    }

    /// The recipients as given.
    pub fn shown(&self) -> &[String] {
        &self.shown
    }

    pub(crate) fn encryptor(&self) -> Result<age::Encryptor, age::EncryptError> {
        age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient))
    }
}

/// The private keys a restore decrypts with: an age identity file (`age-keygen`'s output, `AGE-SECRET-KEY-1…`
/// lines) or an unencrypted OpenSSH private key.
#[derive(Clone)]
pub struct Identities {
    keys: Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys)", self.keys.len())
    }
}

impl Identities {
    /// Reads the identity file `path`.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bad = |what: String| KeyError::Identity {
            path: path.to_path_buf(),
            what,
        };
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let keys: Vec<Box<dyn age::Identity + Send + Sync>> =
            if text.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----") {
                let key = age::ssh::Identity::from_buffer(BufReader::new(&text[..]), Some(path.display().to_string()))
                    .map_err(|e| bad(e.to_string()))?;
                match key {
                    age::ssh::Identity::Unencrypted(_) => vec![Box::new(key)],
                    age::ssh::Identity::Encrypted(_) => {
                        return Err(bad(
                            "a passphrase-protected SSH key; hookrun cannot ask for the passphrase".into(),
                        ))
                    }
                    age::ssh::Identity::Unsupported(k) => return Err(bad(format!("unsupported SSH key: {k:?}"))),
                }
            } else {
                age::IdentityFile::from_buffer(BufReader::new(&text[..]))
                    .map_err(|e| bad(e.to_string()))?
                    .into_identities()
                    .map_err(|e| bad(e.to_string()))?
                    .into_iter()
                    .map(|k| k as Box<dyn age::Identity + Send + Sync>)
                    .collect()
            };
        if keys.is_empty() {
            return Err(bad("holds no identity".into()));
        }
        Ok(Self { keys: Arc::new(keys) })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A throwaway key pair (age-keygen's format) for the crate's tests.
    pub(crate) const IDENTITY: &str = "AGE-SECRET-KEY-1ZKK2GFCZ09CYP8AK59LRV7SJ43XPV4DX0ZQJVGM7V7NV3PCQ68CS2Q3CKR";
    pub(crate) const RECIPIENT: &str = "age1vmym04pdeentgs526m2eqpptpawcv3sugakg9z22uawm6ke263dqcftgz6";

    #[test]
    fn what_is_encrypted_to_a_recipient_its_identity_decrypts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.txt");
        std::fs::write(&file, format!("# created: by hand\n{IDENTITY}\n")).unwrap();
        let recipients = Recipients::parse(&[format!("# the operator's key\n{RECIPIENT}\n")]).unwrap();
        let mut sealed = Vec::new();
        let mut w = recipients.encryptor().unwrap().wrap_output(&mut sealed).unwrap();
        w.write_all(b"the archive").unwrap();
        w.finish().unwrap();
        let ids = Identities::from_file(&file).unwrap();
        let mut plain = String::new();
        age::Decryptor::new(&sealed[..])
            .unwrap()
            .decrypt(ids.iter())
            .unwrap()
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "the archive");
    }

    #[test]
    fn a_bad_recipient_or_identity_is_named() {
        let err = Recipients::parse(&["age1nope".to_string()]).unwrap_err();
        assert!(
            err.to_string().contains("\"age1nope\" is not an age recipient"),
            "{err}"
        );
        assert!(matches!(
            Recipients::parse(&["# only a comment".to_string()]),
            Err(KeyError::NoRecipients)
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.txt");
        std::fs::write(&file, "not a key\n").unwrap();
        let err = Identities::from_file(&file).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("identity file {}:", file.display())),
            "{err}"
        );
    }
}
