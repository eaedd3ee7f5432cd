//! Rendering one clap command tree into man pages and completion scripts.

use anyhow::{Context, Result};
use clap::Command;
use clap_complete::Shell;
use std::path::Path;

/// Writes NAME.1 for the command and NAME-SUB.1 (recursively, NAME-SUB-SUBSUB.1) for every
/// visible subcommand into `dir`.
pub fn man_pages(cmd: &Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd.clone();
    cmd.build();
    write_page(&cmd, cmd.get_name(), dir)
}

fn write_page(cmd: &Command, name: &str, dir: &Path) -> Result<()> {
    // The page is named by the full command line ("berth-create"). clap keeps names as
    // &'static str; this process renders a few dozen pages and exits.
    let page = cmd
        .clone()
        .name(&*Box::leak(name.to_string().into_boxed_str()));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .section("1")
        .source(format!("berth {}", env!("CARGO_PKG_VERSION")))
        .manual("berth manual")
        .render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// Writes the completion scripts where shells look for them under a prefix's share/ directory
/// (`share`): bash-completion's loader, zsh's site-functions and fish's vendor completions.
pub fn completions(cmd: &Command, share: &Path) -> Result<()> {
    let name = cmd.get_name().to_string();
    for (shell, sub, file) in [
        (Shell::Bash, "bash-completion/completions", name.clone()),
        (Shell::Zsh, "zsh/site-functions", format!("_{name}")),
        (
            Shell::Fish,
            "fish/vendor_completions.d",
            format!("{name}.fish"),
        ),
    ] {
        let d = share.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
        let path = d.join(file);
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Command {
        Command::new("tool")
            .about("A tool")
            .subcommand(
                Command::new("go")
                    .about("Go somewhere")
                    .subcommand(Command::new("far").about("Far away")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn pages_for_every_visible_subcommand_and_completions_per_shell() {
        let dir = std::env::temp_dir().join(format!("berth-docgen-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        man_pages(&tool(), &dir.join("man/man1")).unwrap();
        completions(&tool(), &dir).unwrap();
        let mut pages: Vec<String> = std::fs::read_dir(dir.join("man/man1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        assert_eq!(pages, ["tool-go-far.1", "tool-go.1", "tool.1"]);
        let page = std::fs::read_to_string(dir.join("man/man1/tool-go.1")).unwrap();
        assert!(page.contains("tool\\-go"), "{page}");
        assert!(page.contains("Go somewhere"), "{page}");
        for f in [
            "bash-completion/completions/tool",
            "zsh/site-functions/_tool",
            "fish/vendor_completions.d/tool.fish",
        ] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(text.contains("go"), "{f}: {text}");
        }
        // The same input renders the same bytes (the release tarball depends on it).
        let again = dir.join("again");
        man_pages(&tool(), &again).unwrap();
        assert_eq!(
            std::fs::read(again.join("tool-go.1")).unwrap(),
            std::fs::read(dir.join("man/man1/tool-go.1")).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
