//! Kafka Connect's config-provider references in config values, so that secrets live outside the
//! config file: `${env:NAME}` is the environment variable `NAME` (Connect's
//! `EnvVarConfigProvider`), `${file:/path:key}` is `key` of the Java properties file `/path`
//! (Connect's `FileConfigProvider`), and `${file:/path}` is the whole file, trailing newline
//! removed (a Docker or Kubernetes secret file). A reference may be part of a value
//! (`jdbc:mysql://db/x?password=${env:PW}`); `$${` is a literal `${`. Any key may use them.
//! Other `${…}` (such as `${topic}` in `table.name.format`) are left as written, as Connect
//! leaves references to providers it does not have.
//!
//! The resolved value is what the service uses; `GET /connectors/<name>/config` shows the value
//! as written (the reference). A reference that cannot be resolved is an error naming the key and
//! the reference, never the value.

use std::collections::BTreeMap;

/// Resolves the references in `value` (of config `key`); errors are the message for the key.
pub fn resolve(value: &str, env_var: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .map(|e| at + e)
            .ok_or_else(|| format!("`{}` has no closing `}}`", &rest[at..]))?;
        let reference = &rest[at + 2..end];
        if reference.starts_with("env:") || reference.starts_with("file:") {
            out.push_str(&lookup(reference, env_var)?);
        } else {
            out.push_str(&rest[at..=end]);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(reference: &str, env_var: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) => env_var(name)
            .ok_or_else(|| format!("`${{{reference}}}`: environment variable {name} is not set")),
        Some(("file", spec)) => {
            // `/path:key`; a path without `:key` is the whole file.
            let (path, key) = match spec.rsplit_once(':') {
                Some((p, k)) if !p.is_empty() && !k.contains('/') => (p, Some(k)),
                _ => (spec, None),
            };
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("`${{{reference}}}`: cannot read {path}: {e}"))?;
            match key {
                None => Ok(text.strip_suffix('\n').unwrap_or(&text).trim_end_matches('\r').to_string()),
                Some(key) => properties(&text)
                    .remove(key)
                    .ok_or_else(|| format!("`${{{reference}}}`: {path} has no key `{key}`")),
            }
        }
        _ => Ok(format!("${{{reference}}}")),
    }
}

/// `key=value` / `key: value` lines of a Java properties file (comments `#`, `!`).
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim_start().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_file_references() {
        let dir = std::env::temp_dir().join(format!("cdc-providers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let props = dir.join("secrets.properties");
        std::fs::write(&props, "# db\ndb.password = s3cr=t\nother: x\n").unwrap();
        let whole = dir.join("pw");
        std::fs::write(&whole, "hunter2\n").unwrap();
        let env = |n: &str| (n == "PW").then(|| "from-env".to_string());
        let p = props.display();
        assert_eq!(resolve(&format!("${{file:{p}:db.password}}"), &env).unwrap(), "s3cr=t");
        assert_eq!(resolve(&format!("${{file:{}}}", whole.display()), &env).unwrap(), "hunter2");
        assert_eq!(resolve("mysql://h/db?password=${env:PW}&x=1", &env).unwrap(), "mysql://h/db?password=from-env&x=1");
        assert_eq!(resolve("a$${env:PW}", &env).unwrap(), "a${env:PW}");
        assert_eq!(resolve("plain", &env).unwrap(), "plain");
        let e = resolve("${env:NOPE}", &env).unwrap_err();
        assert!(e.contains("NOPE"), "{e}");
        let e = resolve(&format!("${{file:{p}:missing}}"), &env).unwrap_err();
        assert!(e.contains("missing") && !e.contains("s3cr"), "{e}");
        assert_eq!(resolve("${vault:x}-${topic}", &env).unwrap(), "${vault:x}-${topic}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
