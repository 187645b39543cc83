//! The shared files: `~/.aws/credentials` and `~/.aws/config` (or
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), profile `AWS_PROFILE` or
//! `default`; `[name]` sections in the credentials file, `[profile name]` in the config.

use super::{Credentials, CredentialsError, Found, Issued, Source};
use crate::config::Secret;
use crate::environment::Env;
use std::collections::HashMap;
use std::path::PathBuf;

/// One profile's keys (lower-cased) from both files.
#[derive(Debug, Default, Clone)]
pub struct Profiles {
    /// The profile's name.
    pub name: String,
    /// Its section of the credentials file.
    credentials: HashMap<String, String>,
    /// Its section of the config file.
    config: HashMap<String, String>,
    /// The files read, for messages.
    files: Vec<PathBuf>,
    /// Why the profile cannot be used (unreadable file, unknown `AWS_PROFILE`); an
    /// error only once the chain gets to the shared files, so config keys still work.
    problem: Option<CredentialsError>,
}

impl Profiles {
    /// Reads the selected profile from the shared files; missing files are empty.
    /// A profile named by `AWS_PROFILE` must exist in one of them, or using it fails.
    pub fn load(env: Env) -> Profiles {
        let mut profiles = Profiles::default();
        if let Err(e) = profiles.read(env) {
            profiles.credentials.clear();
            profiles.config.clear();
            profiles.problem = Some(e);
        }
        profiles
    }

    fn read(&mut self, env: Env) -> Result<(), CredentialsError> {
        let home = env("HOME").map(PathBuf::from);
        // `~/` in the variables means the home directory, as for the AWS CLI.
        let path = |var: &str, name: &str| match (env(var), &home) {
            (Some(p), Some(h)) if p.starts_with("~/") => Some(h.join(&p[2..])),
            (Some(p), _) => Some(PathBuf::from(p)),
            (None, h) => h.as_ref().map(|h| h.join(".aws").join(name)),
        };
        let explicit = env("AWS_PROFILE");
        let name = explicit.clone().unwrap_or_else(|| "default".into());
        let profiles = self;
        profiles.name = name.clone();
        let mut found = false;
        if let Some(file) = path("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            if let Some(section) = read_section(&file, std::slice::from_ref(&name))? {
                profiles.credentials = section;
                found = true;
            }
            profiles.files.push(file);
        }
        if let Some(file) = path("AWS_CONFIG_FILE", "config") {
            let headers = if name == "default" {
                vec!["default".to_string(), "profile default".to_string()]
            } else {
                vec![format!("profile {name}")]
            };
            if let Some(section) = read_section(&file, &headers)? {
                profiles.config = section;
                found = true;
            }
            profiles.files.push(file);
        }
        if explicit.is_some() && !found {
            return Err(CredentialsError::new(format!(
                "AWS_PROFILE names profile `{name}`, which is in neither {}",
                profiles.shown_files()
            )));
        }
        Ok(())
    }

    /// A key of the profile: the credentials file's, else the config file's.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.credentials
            .get(key)
            .or_else(|| self.config.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn shown_files(&self) -> String {
        let shown: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        if shown.is_empty() {
            "shared file (HOME is not set)".into()
        } else {
            shown.join(" nor ")
        }
    }
}

/// The keys of the first section whose header is one of `headers`; None when the
/// file or section is absent.
fn read_section(
    file: &PathBuf,
    headers: &[String],
) -> Result<Option<HashMap<String, String>>, CredentialsError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialsError::new(format!(
                "cannot read the AWS file {}: {e}",
                file.display()
            )))
        }
    };
    Ok(parse_ini(&text)
        .into_iter()
        .find(|(name, _)| headers.contains(name))
        .map(|(_, keys)| keys))
}

/// Sections of an AWS INI file: `[header]` then `key = value` lines. Comments
/// (`#`, `;`) and indented lines (nested settings such as `s3 =` blocks) are skipped.
fn parse_ini(text: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut sections: Vec<(String, HashMap<String, String>)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.push((header, HashMap::new()));
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        if let (Some((key, value)), Some((_, keys))) = (line.split_once('='), sections.last_mut()) {
            keys.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    sections
}

/// Static keys of the selected profile.
pub struct ProfileKeys(Result<Found, CredentialsError>);

impl ProfileKeys {
    /// Looks at the loaded profile once; the files are not read again on refresh.
    pub fn new(p: &Profiles) -> ProfileKeys {
        if let Some(problem) = &p.problem {
            return ProfileKeys(Err(problem.clone()));
        }
        let id = p.get("aws_access_key_id");
        let secret = p.get("aws_secret_access_key");
        let outcome = match (id, secret) {
            (Some(id), Some(secret)) => {
                let found = Credentials {
                    access_key_id: id.to_string(),
                    secret_access_key: Secret::new(secret),
                    session_token: p.get("aws_session_token").map(Secret::new),
                    source: "shared files",
                };
                let name = |key: &str| format!("`{key}` of profile `{}`", p.name);
                found
                    .check_text([
                        &name("aws_access_key_id"),
                        &name("aws_secret_access_key"),
                        &name("aws_session_token"),
                    ])
                    .map(|()| Found::Yes(Issued::lasting(found)))
            }
            (Some(_), None) | (None, Some(_)) => Err(CredentialsError::new(format!(
                "profile `{}` has only one of aws_access_key_id and aws_secret_access_key",
                p.name
            ))),
            (None, None) => match ["credential_process", "sso_session", "sso_start_url", "source_profile"]
                .into_iter()
                .find(|k| p.get(k).is_some())
            {
                // A profile that asks for something this program cannot do must not
                // silently fall through to instance credentials.
                Some(unsupported) if p.get("web_identity_token_file").is_none() => {
                    Err(CredentialsError::new(format!(
                        "profile `{}` uses `{unsupported}`, which this program does not support; \
                         export the credentials (e.g. `eval $(aws configure export-credentials --format env)`)",
                        p.name
                    )))
                }
                _ => Ok(Found::No(format!(
                    "no keys for profile `{}` in {}",
                    p.name,
                    p.shown_files()
                ))),
            },
        };
        ProfileKeys(outcome)
    }
}

impl Source for ProfileKeys {
    fn name(&self) -> &'static str {
        "shared files"
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        match &self.0 {
            Ok(Found::Yes(issued)) => Ok(Found::Yes(issued.clone())),
            Ok(Found::No(why)) => Ok(Found::No(why.clone())),
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::tests::env_of;

    const CREDENTIALS: &str = "\
# comment
[default]
aws_access_key_id = AKDEFAULT
aws_secret_access_key = defaultsecret

[ci]
aws_access_key_id=AKCI
aws_secret_access_key=cisecret
aws_session_token = citoken
";

    const CONFIG: &str = "\
[default]
region = eu-central-1
s3 =
  region = ignored-nested

[profile ci]
region = ap-south-1
[profile  only-config]
aws_access_key_id = AKCFG
aws_secret_access_key = cfgsecret
[profile sso]
sso_session = corp
";

    fn with_files<T>(f: impl FnOnce(&str, &str) -> T) -> T {
        let dir = std::env::temp_dir().join(format!(
            "dk-profile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let config = dir.join("config");
        std::fs::write(&creds, CREDENTIALS).unwrap();
        std::fs::write(&config, CONFIG).unwrap();
        let out = f(creds.to_str().unwrap(), config.to_str().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn keys(p: &Profiles) -> Result<Found, CredentialsError> {
        ProfileKeys::new(p).fetch()
    }

    #[test]
    fn profiles_from_both_files() {
        with_files(|creds, config| {
            let base = [
                ("AWS_SHARED_CREDENTIALS_FILE", creds),
                ("AWS_CONFIG_FILE", config),
            ];
            let p = Profiles::load(&env_of(&base));
            assert_eq!(p.get("region"), Some("eu-central-1"));
            match keys(&p).unwrap() {
                Found::Yes(i) => assert_eq!(i.credentials.access_key_id, "AKDEFAULT"),
                other => panic!("{other:?}"),
            }
            let mut env = base.to_vec();
            env.push(("AWS_PROFILE", "ci"));
            let p = Profiles::load(&env_of(&env));
            assert_eq!(p.get("region"), Some("ap-south-1"));
            match keys(&p).unwrap() {
                Found::Yes(i) => {
                    assert_eq!(i.credentials.access_key_id, "AKCI");
                    assert_eq!(i.credentials.session_token.unwrap().expose(), "citoken");
                }
                other => panic!("{other:?}"),
            }
            env.pop();
            env.push(("AWS_PROFILE", "only-config"));
            let p = Profiles::load(&env_of(&env));
            assert!(
                matches!(keys(&p).unwrap(), Found::Yes(i) if i.credentials.access_key_id == "AKCFG")
            );
            env.pop();
            env.push(("AWS_PROFILE", "sso"));
            let p = Profiles::load(&env_of(&env));
            assert!(keys(&p).unwrap_err().message.contains("sso_session"));
            env.pop();
            env.push(("AWS_PROFILE", "nope"));
            let p = Profiles::load(&env_of(&env));
            assert!(p.get("region").is_none());
            let e = keys(&p).unwrap_err();
            assert!(
                e.message.contains("`nope`") && e.message.contains(creds),
                "{e}"
            );
        });
    }

    #[test]
    fn home_directory_files_and_absence() {
        with_files(|creds, _| {
            let dir = std::path::Path::new(creds)
                .parent()
                .unwrap()
                .to_str()
                .unwrap();
            let env = [
                ("HOME", dir),
                ("AWS_SHARED_CREDENTIALS_FILE", "~/credentials"),
            ];
            let p = Profiles::load(&env_of(&env));
            assert!(matches!(keys(&p).unwrap(), Found::Yes(_)));
        });
        let p = Profiles::load(&env_of(&[("HOME", "/nonexistent-home")]));
        assert!(
            matches!(keys(&p).unwrap(), Found::No(why) if why.contains("/nonexistent-home/.aws/credentials"))
        );
        let p = Profiles::load(&env_of(&[]));
        assert!(p.get("region").is_none());
    }

    #[test]
    fn ini_details() {
        let s = parse_ini("[a]\nk = v = w\n ; c\n  nested = x\nK2=\n");
        assert_eq!(s[0].1.get("k").map(String::as_str), Some("v = w"));
        assert!(!s[0].1.contains_key("nested"));
        assert_eq!(s[0].1.get("k2").map(String::as_str), Some(""));
    }
}
