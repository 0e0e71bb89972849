//! The command a report prints to rerun the failing test with the full
//! view: `cargo leakcheck`, the alias the README sets up ("See where a
//! plain tokio::spawn came from"), which runs `cargo test` under
//! `--cfg tokio_unstable` with leakcheck's `taskdump` feature in its own
//! target directory.

use std::path::Path;

/// Whether tokio can take task dumps on this platform (and so whether the
/// alias includes the `taskdump` feature here).
pub(crate) const DUMPS_SUPPORTED: bool = cfg!(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "aarch64"
    )
));

/// `cargo leakcheck <target> -- <test> --exact` for the running test
/// binary, as far as it can be known from the environment cargo and
/// cargo-nextest give a test process.
pub(crate) fn command(test: Option<&str>) -> String {
    let nextest = std::env::var("NEXTEST_BINARY_ID").ok();
    let package = std::env::var("CARGO_PKG_NAME").ok();
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR");
    let exe = std::env::current_exe().ok();
    let exists = |relative: &str| {
        manifest_dir
            .as_ref()
            .is_some_and(|dir| Path::new(dir).join(relative).exists())
    };
    let target = target_args(
        nextest.as_deref(),
        package.as_deref(),
        exe.as_deref(),
        exists,
    );
    format_command(target.as_deref(), test)
}

/// The command line, from the target selection and the test's full name.
pub(crate) fn format_command(target: Option<&str>, test: Option<&str>) -> String {
    let mut command = String::from("cargo leakcheck");
    if let Some(target) = target {
        command.push(' ');
        command.push_str(target);
    }
    if let Some(test) = test {
        command.push_str(" -- ");
        command.push_str(&shell_word(test));
        command.push_str(" --exact");
    }
    command
}

/// The cargo arguments that select the running test target: `-p app
/// --test api`, `-p app --lib`, or just `-p app` when the target can't be
/// told (a filter then finds the test in whichever target has it).
///
/// Under cargo-nextest, `NEXTEST_BINARY_ID` names it (`app`, `app::api`,
/// `app::bin/name`). Under `cargo test`, cargo sets `CARGO_PKG_NAME` and
/// the binary is `target/<profile>/deps/<crate name>-<16 hex digits>`;
/// `exists` says whether a path relative to the package's manifest
/// directory exists, to tell a library from a binary of the same name and
/// to spell a hyphenated test target the way cargo wants it.
pub(crate) fn target_args(
    nextest_binary_id: Option<&str>,
    package: Option<&str>,
    exe: Option<&Path>,
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    if let Some(id) = nextest_binary_id.filter(|id| !id.is_empty()) {
        let Some((package, target)) = id.split_once("::") else {
            return Some(format!("-p {id} --lib"));
        };
        let selector = match target.split_once('/') {
            None => format!("--test {target}"),
            Some(("bin", name)) => format!("--bin {name}"),
            Some(("example", name)) => format!("--example {name}"),
            Some(("bench", name)) => format!("--bench {name}"),
            Some(_) => return Some(format!("-p {package}")),
        };
        return Some(format!("-p {package} {selector}"));
    }
    let package = package?;
    let just_package = Some(format!("-p {package}"));
    let Some(exe) = exe else {
        return just_package;
    };
    let (Some(stem), Some(dir)) = (
        exe.file_stem().and_then(|s| s.to_str()),
        exe.parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str()),
    ) else {
        return just_package;
    };
    let Some((name, hash)) = stem.rsplit_once('-') else {
        return just_package;
    };
    if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return just_package;
    }
    let selector = match dir {
        "deps" if name == package.replace('-', "_") => {
            // The library's unit tests, or a binary's of the same name.
            if exists("src/main.rs") {
                return just_package;
            }
            "--lib".to_owned()
        }
        "deps" => {
            // A target's crate name has `_` where its name may have `-`.
            let hyphenated = name.replace('_', "-");
            let spelled = if name.contains('_')
                && !exists(&format!("tests/{name}.rs"))
                && !exists(&format!("tests/{name}/main.rs"))
                && (exists(&format!("tests/{hyphenated}.rs"))
                    || exists(&format!("tests/{hyphenated}/main.rs")))
            {
                hyphenated
            } else {
                name.to_owned()
            };
            format!("--test {spelled}")
        }
        "examples" => format!("--example {name}"),
        _ => return just_package,
    };
    Some(format!("-p {package} {selector}"))
}

/// `word` as one shell word: as it is when that is safe, else quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:-./".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(path: &str) -> Option<&Path> {
        Some(Path::new(path))
    }

    #[test]
    fn nextest_names_the_binary() {
        let none = |_: &str| false;
        let cases = [
            ("app", "-p app --lib"),
            ("app::api", "-p app --test api"),
            ("app::bin/server", "-p app --bin server"),
            ("app::example/demo", "-p app --example demo"),
            ("app::bench/spawn", "-p app --bench spawn"),
            ("app::proc-macro/x", "-p app"),
        ];
        for (id, want) in cases {
            let got = target_args(
                Some(id),
                Some("other"),
                exe("/t/deps/x-0123456789abcdef"),
                none,
            );
            assert_eq!(got.as_deref(), Some(want), "{id}");
        }
    }

    #[test]
    fn cargo_test_is_read_from_the_binary_path() {
        let lib_only = |p: &str| p == "src/lib.rs" || p == "tests/my-api.rs";
        let with_main = |p: &str| p == "src/main.rs";
        let hash = "0123456789abcdef";
        type Exists<'a> = &'a dyn Fn(&str) -> bool;
        let cases: [(&str, &str, Exists, Option<&str>); 7] = [
            (
                "my-app",
                "deps/api",
                &lib_only,
                Some("-p my-app --test api"),
            ),
            (
                "my-app",
                "deps/my_api",
                &lib_only,
                Some("-p my-app --test my-api"),
            ),
            (
                "my-app",
                "deps/plain_api",
                &lib_only,
                Some("-p my-app --test plain_api"),
            ),
            ("my-app", "deps/my_app", &lib_only, Some("-p my-app --lib")),
            ("my-app", "deps/my_app", &with_main, Some("-p my-app")),
            (
                "my-app",
                "examples/demo",
                &lib_only,
                Some("-p my-app --example demo"),
            ),
            ("my-app", "elsewhere/api", &lib_only, Some("-p my-app")),
        ];
        for (package, path, exists, want) in cases {
            let path = format!("/w/target/debug/{path}-{hash}");
            let got = target_args(None, Some(package), exe(&path), exists);
            assert_eq!(got.as_deref(), want, "{path}");
        }
        // Not a cargo-built test binary, or not run by cargo.
        let got = target_args(None, Some("app"), exe("/usr/bin/api"), lib_only);
        assert_eq!(got.as_deref(), Some("-p app"));
        assert_eq!(
            target_args(None, None, exe("/t/deps/api-0123456789abcdef"), lib_only),
            None
        );
    }

    #[test]
    fn the_command_quotes_what_a_shell_would_split() {
        assert_eq!(
            format_command(Some("-p app --test api"), Some("pool::drains")),
            "cargo leakcheck -p app --test api -- pool::drains --exact"
        );
        assert_eq!(
            format_command(None, Some("it's a test")),
            r"cargo leakcheck -- 'it'\''s a test' --exact"
        );
        assert_eq!(
            format_command(Some("-p app"), None),
            "cargo leakcheck -p app"
        );
    }
}
