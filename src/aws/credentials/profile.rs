//! The shared files: `~/.aws/credentials` and `~/.aws/config` (or
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), profile `--profile`, else
//! `AWS_PROFILE`, else `default`; `[name]` sections in the credentials file,
//! `[profile name]` in the config.

use super::CredentialsError;
use crate::aws::environment::Env;
use std::collections::HashMap;
use std::path::PathBuf;

/// Every profile of both files, and which one is selected.
#[derive(Debug, Default, Clone)]
pub struct Profiles {
    /// The selected profile's name.
    pub name: String,
    /// Each profile's keys (lower-cased) by profile name.
    sections: HashMap<String, Section>,
    /// The files read, for messages.
    files: Vec<PathBuf>,
    /// Why the profile cannot be used (unreadable file, unknown `AWS_PROFILE`); an
    /// error only once the chain gets to the shared files, so config keys still work.
    problem: Option<CredentialsError>,
}

/// One profile's keys, file by file.
#[derive(Debug, Default, Clone)]
struct Section {
    /// Its section of the credentials file.
    credentials: HashMap<String, String>,
    /// Its section of the config file.
    config: HashMap<String, String>,
}

/// Which shared file a key is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// `~/.aws/credentials`.
    Credentials,
    /// `~/.aws/config`.
    Config,
}

/// One profile of the shared files.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    /// Its name.
    pub name: &'a str,
    section: &'a Section,
}

impl<'a> Profile<'a> {
    /// A key of the profile: the credentials file's, else the config file's.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.in_file(File::Credentials, key)
            .or_else(|| self.in_file(File::Config, key))
    }

    /// A key as one file has it.
    pub fn in_file(&self, file: File, key: &str) -> Option<&'a str> {
        let keys = match file {
            File::Credentials => &self.section.credentials,
            File::Config => &self.section.config,
        };
        keys.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

impl Profiles {
    /// Reads the shared files; missing files are empty. A profile named by
    /// `AWS_PROFILE` must exist in one of them, or using it fails.
    pub fn load(env: Env) -> Profiles {
        Profiles::load_selecting(env, None)
    }

    /// As `load`, with the profile `--profile` names, when given, in place of `AWS_PROFILE`'s.
    pub fn load_selecting(env: Env, flag: Option<&str>) -> Profiles {
        let mut profiles = Profiles::default();
        if let Err(e) = profiles.read(env, flag) {
            profiles.sections.clear();
            profiles.problem = Some(e);
        }
        profiles
    }

    fn read(&mut self, env: Env, flag: Option<&str>) -> Result<(), CredentialsError> {
        let home = env("HOME").map(PathBuf::from);
        // `~/` in the variables means the home directory, as for the AWS CLI.
        let path = |var: &str, name: &str| match (env(var), &home) {
            (Some(p), Some(h)) if p.starts_with("~/") => Some(h.join(&p[2..])),
            (Some(p), _) => Some(PathBuf::from(p)),
            (None, h) => h.as_ref().map(|h| h.join(".aws").join(name)),
        };
        let (explicit, named_by) = match flag {
            Some(name) => (Some(name.to_string()), "--profile"),
            None => (env("AWS_PROFILE"), "AWS_PROFILE"),
        };
        self.name = explicit.clone().unwrap_or_else(|| "default".into());
        if let Some(file) = path("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            for (header, keys) in read_sections(&file)? {
                // Every section of the credentials file is a profile.
                self.sections
                    .entry(header)
                    .or_default()
                    .credentials
                    .extend_missing(keys);
            }
            self.files.push(file);
        }
        if let Some(file) = path("AWS_CONFIG_FILE", "config") {
            for (header, keys) in read_sections(&file)? {
                // `[profile name]`, and `[default]`; other sections (sso-session,
                // services) are not profiles.
                let name = match header.strip_prefix("profile ") {
                    Some(name) => name.to_string(),
                    None if header == "default" => header,
                    None => continue,
                };
                self.sections
                    .entry(name)
                    .or_default()
                    .config
                    .extend_missing(keys);
            }
            self.files.push(file);
        }
        if explicit.is_some() && !self.sections.contains_key(&self.name) {
            return Err(CredentialsError::new(format!(
                "{named_by} names profile `{}`, which is in neither {}",
                self.name,
                self.shown_files()
            )));
        }
        Ok(())
    }

    /// A key of the selected profile.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.selected().and_then(|p| p.get(key))
    }

    /// The selected profile, when either file has it.
    pub fn selected(&self) -> Option<Profile<'_>> {
        self.profile(&self.name)
    }

    /// A profile by name, when either file has it.
    pub fn profile(&self, name: &str) -> Option<Profile<'_>> {
        self.sections
            .get_key_value(name)
            .map(|(name, section)| Profile { name, section })
    }

    /// Why the files cannot be used, if they cannot.
    pub fn problem(&self) -> Option<&CredentialsError> {
        self.problem.as_ref()
    }

    /// The files read, for messages: "a nor b".
    pub fn shown_files(&self) -> String {
        let shown: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        if shown.is_empty() {
            "shared file (HOME is not set)".into()
        } else {
            shown.join(" nor ")
        }
    }
}

/// A section of an INI file: its header and keys.
type IniSection = (String, HashMap<String, String>);

/// Adds the keys not there yet: the first section of a name wins, key by key.
trait ExtendMissing {
    fn extend_missing(&mut self, keys: HashMap<String, String>);
}

impl ExtendMissing for HashMap<String, String> {
    fn extend_missing(&mut self, keys: HashMap<String, String>) {
        for (k, v) in keys {
            self.entry(k).or_insert(v);
        }
    }
}

/// The sections of a file; none when the file is absent.
fn read_sections(file: &PathBuf) -> Result<Vec<IniSection>, CredentialsError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(CredentialsError::new(format!(
            "cannot read the AWS file {}: {e}",
            file.display()
        ))),
    }
}

/// Sections of an AWS INI file: `[header]` then `key = value` lines. Comments
/// (`#`, `;`) and indented lines (nested settings such as `s3 =` blocks) are skipped.
fn parse_ini(text: &str) -> Vec<IniSection> {
    let mut sections: Vec<IniSection> = Vec::new();
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::credentials::tests::{env_of, with_context};
    use crate::aws::credentials::{profile_chain, Found};

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

    /// Runs `f` with a credentials file and a config file of these contents
    /// (their paths), in a directory of this test's own.
    pub(crate) fn with_files<T>(
        (credentials, config): (&str, &str),
        f: impl FnOnce(&str, &str) -> T,
    ) -> T {
        let dir = std::env::temp_dir().join(format!(
            "dk-profile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let config_file = dir.join("config");
        std::fs::write(&creds, credentials).unwrap();
        std::fs::write(&config_file, config).unwrap();
        let out = f(creds.to_str().unwrap(), config_file.to_str().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    /// What the chain's "shared files" source makes of the selected profile.
    fn keys(p: &Profiles) -> Result<Found, CredentialsError> {
        with_context(p, None, |cx| {
            profile_chain::selected_keys(&env_of(&[]), cx).fetch()
        })
    }

    #[test]
    fn profiles_from_both_files() {
        with_files((CREDENTIALS, CONFIG), |creds, config| {
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
            // --profile wins over AWS_PROFILE, and is named when it names no profile.
            let p = Profiles::load_selecting(&env_of(&env), Some("ci"));
            assert_eq!(p.get("region"), Some("ap-south-1"));
            let p = Profiles::load_selecting(&env_of(&base), Some("nope"));
            let e = keys(&p).unwrap_err();
            assert!(
                e.message.starts_with("--profile names profile `nope`"),
                "{e}"
            );
        });
    }

    #[test]
    fn home_directory_files_and_absence() {
        with_files((CREDENTIALS, CONFIG), |creds, _| {
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
