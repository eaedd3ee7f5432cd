//! Parser tests, mostly taken from the examples in the Dockerfile reference.

use std::time::Duration;

use super::*;

fn parse(text: &str) -> Dockerfile {
    match Dockerfile::parse("Dockerfile", text) {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn commands(text: &str) -> Vec<Command> {
    parse(text)
        .instructions
        .into_iter()
        .map(|i| i.command)
        .collect()
}

fn one(text: &str) -> Command {
    let mut c = commands(text);
    assert_eq!(c.len(), 1, "expected one instruction in {text:?}: {c:?}");
    c.remove(0)
}

fn err(text: &str) -> ParseError {
    match Dockerfile::parse("Dockerfile", text) {
        Ok(d) => panic!("expected an error for {text:?}, got {:?}", d.instructions),
        Err(e) => e,
    }
}

fn shell(s: &str) -> CommandLine {
    CommandLine::Shell(s.to_string())
}

fn exec(v: &[&str]) -> CommandLine {
    CommandLine::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn copy_of(c: Command) -> CopySpec {
    match c {
        Command::Copy(s) | Command::Add(s) => s,
        other => panic!("not COPY/ADD: {other:?}"),
    }
}

fn run_of(c: Command) -> Run {
    match c {
        Command::Run(r) => r,
        other => panic!("not RUN: {other:?}"),
    }
}

// ---- parser directives -------------------------------------------------

#[test]
fn escape_backtick_windows_example() {
    let d =
        parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
    assert_eq!(d.escape(), '`');
    assert_eq!(d.instructions.len(), 3);
    let c = copy_of(d.instructions[1].command.clone());
    assert_eq!(c.dest, "c:\\");
    assert_eq!(c.sources, vec![Source::Path("testfile.txt".into())]);
    assert_eq!(
        d.instructions[2].command,
        Command::Run(Run {
            command: shell("dir c:\\"),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
}

#[test]
fn without_escape_directive_backslash_continues() {
    // The reference's counter-example: the trailing `\` joins the lines.
    let d = parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n");
    assert_eq!(d.instructions.len(), 2);
    assert_eq!(
        d.instructions[1].original,
        "COPY testfile.txt c:\\RUN dir c:"
    );
    assert_eq!(
        d.instructions[1].span,
        Span {
            start_line: 2,
            end_line: 3,
            column: 1
        }
    );
    assert_eq!(copy_of(d.instructions[1].command.clone()).dest, "c:");
}

#[test]
fn backtick_escape_continuation() {
    let c = one("# escape=`\nRUN echo a `\n    b\n");
    assert_eq!(run_of(c).command, shell("echo a     b"));
}

#[test]
fn directives_recorded() {
    let d = parse(
        "# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\nFROM scratch\n",
    );
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(
        d.directives.check.as_deref(),
        Some("skip=JSONArgsRecommended;error=true")
    );
    assert_eq!(d.escape(), '\\');
}

#[test]
fn directives_that_are_only_comments() {
    let cases = [
        // Line continuation is not supported in directives.
        "# direc \\\n# tive=value\n# escape=`\nFROM x\n",
        // After an instruction.
        "FROM x\n# escape=`\nRUN a\n",
        // After a comment that is not a directive.
        "# About my dockerfile\n# escape=`\nFROM x\n",
        // After an empty line.
        "\n# escape=`\nFROM x\n",
        // After an unknown directive.
        "# unknowndirective=value\n# escape=`\nFROM x\n",
    ];
    for text in cases {
        assert_eq!(parse(text).escape(), '\\', "{text:?}");
    }
}

#[test]
fn directive_case_and_spacing() {
    assert_eq!(parse("#\t  EsCaPe =  `  \nFROM x\n").escape(), '`');
}

#[test]
fn invalid_directives() {
    let e = err("# escape=\\\n# escape=`\nFROM x\n");
    assert_eq!(*e.kind, ParseErrorKind::DuplicateDirective("escape".into()));
    assert_eq!(e.location.line, 2);
    let e = err("# escape=x\nFROM x\n");
    assert!(matches!(*e.kind, ParseErrorKind::InvalidDirective { .. }));
}

// ---- comments, whitespace, continuations -------------------------------

#[test]
fn comments_and_leading_whitespace() {
    let c = commands("        # this is a comment-line\n    RUN echo hello\nRUN echo world\n");
    assert_eq!(c.len(), 2);
    assert_eq!(run_of(c[0].clone()).command, shell("echo hello"));
    let d = parse("        # c\n    RUN echo hello\n");
    assert_eq!(d.instructions[0].span.column, 5);
}

#[test]
fn whitespace_in_arguments_is_kept() {
    let c = one("RUN echo \"\\\n     hello\\\n     world\"\n");
    assert_eq!(run_of(c).command, shell("echo \"     hello     world\""));
}

#[test]
fn comment_and_empty_lines_inside_continuation() {
    let d = parse("RUN echo hello \\\n# comment\n\nworld\n");
    assert_eq!(
        run_of(d.instructions[0].command.clone()).command,
        shell("echo hello world")
    );
    assert_eq!(d.instructions[0].span.end_line, 4);
    assert_eq!(d.warnings.len(), 1);
}

#[test]
fn hash_not_at_line_start_is_not_a_comment() {
    let c = one("RUN echo hi # not a comment\n");
    assert_eq!(run_of(c).command, shell("echo hi # not a comment"));
}

#[test]
fn keywords_are_case_insensitive() {
    let c = commands("from alpine\nrun echo hi\nCoPy a b\n");
    assert!(matches!(c[0], Command::From(_)));
    assert!(matches!(c[1], Command::Run(_)));
    assert!(matches!(c[2], Command::Copy(_)));
}

#[test]
fn empty_file_has_no_instructions() {
    assert!(parse("").instructions.is_empty());
    assert!(parse("# only a comment\n\n").instructions.is_empty());
}

// ---- FROM --------------------------------------------------------------

#[test]
fn from_forms() {
    let cases: [(&str, From); 3] = [
        (
            "FROM ubuntu",
            From {
                image: "ubuntu".into(),
                stage_name: None,
                platform: None,
            },
        ),
        (
            "FROM --platform=linux/arm64 golang:1.22 AS Build",
            From {
                image: "golang:1.22".into(),
                stage_name: Some("build".into()),
                platform: Some("linux/arm64".into()),
            },
        ),
        (
            "FROM --platform=$BUILDPLATFORM ${IMG}@sha256:abc as base.1-x_y",
            From {
                image: "${IMG}@sha256:abc".into(),
                stage_name: Some("base.1-x_y".into()),
                platform: Some("$BUILDPLATFORM".into()),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(one(text), Command::From(want), "{text}");
    }
}

#[test]
fn from_errors() {
    for text in [
        "FROM",
        "FROM a b",
        "FROM a AS",
        "FROM a AS 1abc",
        "FROM a AS b c",
        "FROM a LIKE b",
        "FROM --plat=x a",
    ] {
        let e = err(text);
        assert_eq!(e.location.line, 1, "{text}");
    }
}

// ---- RUN / CMD / ENTRYPOINT / SHELL ------------------------------------

#[test]
fn exec_and_shell_forms() {
    let cases = [
        ("RUN [\"echo\", \"hi\"]", exec(&["echo", "hi"])),
        (
            "RUN [ \"/bin/bash\", \"-c\", \"echo hello\" ]",
            exec(&["/bin/bash", "-c", "echo hello"]),
        ),
        ("RUN echo hi", shell("echo hi")),
        // Not valid JSON: shell form.
        ("RUN ['echo', 'hi']", shell("['echo', 'hi']")),
        ("RUN [\"echo\", \"hi\"", shell("[\"echo\", \"hi\"")),
        ("RUN [\"a\"] && b", shell("[\"a\"] && b")),
        ("RUN [ -f /x ] && echo y", shell("[ -f /x ] && echo y")),
        (
            "RUN [\"c:\\\\windows\\\\x.exe\"]",
            exec(&["c:\\windows\\x.exe"]),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(run_of(one(text)).command, want, "{text}");
    }
    assert_eq!(
        one("CMD [\"echo\", \"$HOME\"]"),
        Command::Cmd(exec(&["echo", "$HOME"]))
    );
    assert_eq!(one("CMD echo $HOME"), Command::Cmd(shell("echo $HOME")));
    assert_eq!(one("CMD []"), Command::Cmd(exec(&[])));
    assert_eq!(
        one("ENTRYPOINT [\"top\", \"-b\"]"),
        Command::Entrypoint(exec(&["top", "-b"]))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Command::Entrypoint(shell("exec top -b"))
    );
}

#[test]
fn json_array_of_non_strings_is_an_error() {
    assert_eq!(
        *err("RUN [\"echo\", 1]").kind,
        ParseErrorKind::JsonNotStrings
    );
    assert_eq!(*err("CMD [[\"a\"]]").kind, ParseErrorKind::JsonNotStrings);
}

#[test]
fn run_flags() {
    let r = run_of(one(
        "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=secret,id=aws --network=none --security=insecure apt-get update",
    ));
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[0].sharing, CacheSharing::Locked);
    assert_eq!(r.mounts[1].target.as_deref(), Some("/run/secrets/aws"));
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.security, Some(SecurityMode::Insecure));
    assert_eq!(r.command, shell("apt-get update"));
    let r = run_of(one("RUN --network=host [\"ping\", \"x\"]"));
    assert_eq!(
        (r.network, r.command),
        (Some(NetworkMode::Host), exec(&["ping", "x"]))
    );
}

#[test]
fn run_flag_errors() {
    let e = err("FROM x\nRUN --mout=type=cache,target=/x make\n");
    assert_eq!(e.location.line, 2);
    assert_eq!(
        *e.kind,
        ParseErrorKind::UnknownFlag {
            instruction: "RUN".into(),
            flag: "mout".into(),
            suggestion: Some("--mount".into())
        }
    );
    assert!(matches!(
        *err("RUN --network=bridge x").kind,
        ParseErrorKind::InvalidFlagValue { .. }
    ));
    assert!(matches!(
        *err("RUN --security=lax x").kind,
        ParseErrorKind::InvalidFlagValue { .. }
    ));
    assert!(matches!(
        *err("RUN --mount=type=cache x").kind,
        ParseErrorKind::InvalidMount(_)
    ));
    assert!(matches!(
        *err("RUN --mount x").kind,
        ParseErrorKind::MissingFlagValue(_)
    ));
    assert!(matches!(*err("RUN").kind, ParseErrorKind::Arguments { .. }));
    assert!(matches!(
        *err("RUN --network=none").kind,
        ParseErrorKind::Arguments { .. }
    ));
}

#[test]
fn flags_on_instructions_without_flags_are_errors() {
    for text in [
        "CMD --help",
        "ENV --x=1 a=b",
        "WORKDIR --p /x",
        "ONBUILD --x RUN a",
    ] {
        assert!(
            matches!(*err(text).kind, ParseErrorKind::UnknownFlag { .. }),
            "{text}"
        );
    }
}

#[test]
fn shell_instruction() {
    assert_eq!(
        one("SHELL [\"powershell\", \"-command\"]"),
        Command::Shell(vec!["powershell".into(), "-command".into()])
    );
    assert_eq!(
        *err("SHELL /bin/bash -c").kind,
        ParseErrorKind::JsonRequired("SHELL".into())
    );
    assert!(matches!(
        *err("SHELL []").kind,
        ParseErrorKind::Arguments { .. }
    ));
}

// ---- COPY / ADD --------------------------------------------------------

#[test]
fn copy_forms() {
    let c = copy_of(one("COPY --chown=55:mygroup --chmod=644 files* /somedir/"));
    assert_eq!(c.chown.as_deref(), Some("55:mygroup"));
    assert_eq!(c.chmod.as_deref(), Some("644"));
    assert_eq!(c.sources, vec![Source::Path("files*".into())]);
    assert_eq!(c.dest, "/somedir/");
    assert!(!c.json);

    let c = copy_of(one("COPY [\"hom file.txt\", \"other\", \"/my dir/\"]"));
    assert!(c.json);
    assert_eq!(
        c.sources,
        vec![
            Source::Path("hom file.txt".into()),
            Source::Path("other".into())
        ]
    );
    assert_eq!(c.dest, "/my dir/");

    let c = copy_of(one(
        "COPY --from=build --link --parents --exclude=*.txt --exclude=*.md ./x/**/y /z/",
    ));
    assert_eq!(c.from.as_deref(), Some("build"));
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, vec!["*.txt", "*.md"]);

    let c = copy_of(one(
        "COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf",
    ));
    assert_eq!(c.from.as_deref(), Some("nginx:latest"));
}

#[test]
fn add_forms() {
    let c = copy_of(one(
        "ADD --keep-git-dir=true --checksum=sha256:24454f830c https://github.com/moby/buildkit.git#v0.10.1 /buildkit",
    ));
    assert!(c.keep_git_dir);
    assert_eq!(c.checksum.as_deref(), Some("sha256:24454f830c"));
    assert_eq!(
        c.sources,
        vec![Source::Path(
            "https://github.com/moby/buildkit.git#v0.10.1".into()
        )]
    );
    let c = copy_of(one("ADD --link=false a.tar.gz /"));
    assert!(!c.link);
}

#[test]
fn copy_add_errors() {
    assert!(matches!(
        *err("COPY onlyone").kind,
        ParseErrorKind::Arguments { .. }
    ));
    assert!(matches!(
        *err("COPY [\"onlyone\"]").kind,
        ParseErrorKind::Arguments { .. }
    ));
    // --from belongs to COPY, --checksum to ADD.
    assert!(matches!(
        *err("ADD --from=x a b").kind,
        ParseErrorKind::UnknownFlag { .. }
    ));
    assert!(matches!(
        *err("COPY --checksum=x a b").kind,
        ParseErrorKind::UnknownFlag { .. }
    ));
    assert!(matches!(
        *err("COPY --from=a --from=b x y").kind,
        ParseErrorKind::DuplicateFlag(_)
    ));
    assert!(matches!(
        *err("COPY --link=maybe a b").kind,
        ParseErrorKind::InvalidFlagValue { .. }
    ));
}

// ---- ENV / LABEL / ARG -------------------------------------------------

#[test]
fn env_reference_examples() {
    assert_eq!(
        one("ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy"),
        Command::Env(vec![
            kv("MY_NAME", "\"John Doe\""),
            kv("MY_DOG", "Rex\\ The\\ Dog"),
            kv("MY_CAT", "fluffy"),
        ])
    );
    assert_eq!(
        one("ENV MY_VAR my-value"),
        Command::Env(vec![kv("MY_VAR", "my-value")])
    );
    assert_eq!(
        one("ENV ONE TWO= THREE=world"),
        Command::Env(vec![kv("ONE", "TWO= THREE=world")])
    );
    assert_eq!(one("ENV EMPTY="), Command::Env(vec![kv("EMPTY", "")]));
    assert_eq!(one("ENV A=\"\""), Command::Env(vec![kv("A", "\"\"")]));
}

#[test]
fn env_errors() {
    for text in ["ENV", "ENV a", "ENV =x", "ENV a=b c"] {
        assert!(
            matches!(*err(text).kind, ParseErrorKind::Arguments { .. }),
            "{text}"
        );
    }
}

#[test]
fn label_reference_examples() {
    let c = commands(concat!(
        "LABEL \"com.example.vendor\"=\"ACME Incorporated\"\n",
        "LABEL com.example.label-with-value=\"foo\"\n",
        "LABEL version=\"1.0\"\n",
        "LABEL description=\"This text illustrates \\\n",
        "that label-values can span multiple lines.\"\n",
        "LABEL multi.label1=\"value1\" multi.label2=\"value2\" other=\"value3\"\n",
    ));
    assert_eq!(
        c[0],
        Command::Label(vec![kv("\"com.example.vendor\"", "\"ACME Incorporated\"")])
    );
    assert_eq!(
        c[3],
        Command::Label(vec![kv(
            "description",
            "\"This text illustrates that label-values can span multiple lines.\""
        )])
    );
    assert_eq!(
        c[4],
        Command::Label(vec![
            kv("multi.label1", "\"value1\""),
            kv("multi.label2", "\"value2\""),
            kv("other", "\"value3\""),
        ])
    );
}

#[test]
fn arg_forms() {
    let decl = |n: &str, d: Option<&str>| ArgDecl {
        name: n.into(),
        default: d.map(str::to_string),
    };
    assert_eq!(one("ARG user1"), Command::Arg(vec![decl("user1", None)]));
    assert_eq!(
        one("ARG buildno=1"),
        Command::Arg(vec![decl("buildno", Some("1"))])
    );
    assert_eq!(
        one("ARG a=1 b MSG=\"hello world\" E="),
        Command::Arg(vec![
            decl("a", Some("1")),
            decl("b", None),
            decl("MSG", Some("\"hello world\"")),
            decl("E", Some("")),
        ])
    );
    assert!(matches!(*err("ARG").kind, ParseErrorKind::Arguments { .. }));
    assert!(matches!(
        *err("ARG =x").kind,
        ParseErrorKind::Arguments { .. }
    ));
}

// ---- simple instructions -----------------------------------------------

#[test]
fn single_value_instructions() {
    assert_eq!(
        one("WORKDIR /path/to/workdir"),
        Command::Workdir("/path/to/workdir".into())
    );
    assert_eq!(
        one("WORKDIR $DIRPATH/$DIRNAME"),
        Command::Workdir("$DIRPATH/$DIRNAME".into())
    );
    assert_eq!(
        one("USER patrick:staff"),
        Command::User("patrick:staff".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Command::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER SvenDowideit@home.org.au"),
        Command::Maintainer("SvenDowideit@home.org.au".into())
    );
    for text in ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"] {
        assert!(
            matches!(*err(text).kind, ParseErrorKind::Arguments { .. }),
            "{text}"
        );
    }
}

#[test]
fn expose_and_volume() {
    assert_eq!(
        one("EXPOSE 80/udp 80/tcp"),
        Command::Expose(vec!["80/udp".into(), "80/tcp".into()])
    );
    assert!(matches!(
        *err("EXPOSE").kind,
        ParseErrorKind::Arguments { .. }
    ));
    assert_eq!(
        one("VOLUME [\"/data\"]"),
        Command::Volume(vec!["/data".into()])
    );
    assert_eq!(
        one("VOLUME /var/log /var/db"),
        Command::Volume(vec!["/var/log".into(), "/var/db".into()])
    );
    assert!(matches!(
        *err("VOLUME [\"\"]").kind,
        ParseErrorKind::Arguments { .. }
    ));
    assert!(matches!(
        *err("VOLUME").kind,
        ParseErrorKind::Arguments { .. }
    ));
}

// ---- HEALTHCHECK -------------------------------------------------------

#[test]
fn healthcheck_reference_example() {
    let c =
        one("HEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1");
    assert_eq!(
        c,
        Command::Healthcheck(Healthcheck::Check(HealthcheckConfig {
            test: vec![
                "CMD-SHELL".into(),
                "curl -f http://localhost/ || exit 1".into()
            ],
            interval: Some(Duration::from_secs(300)),
            timeout: Some(Duration::from_secs(3)),
            start_period: None,
            start_interval: None,
            retries: None,
        }))
    );
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Command::Healthcheck(Healthcheck::None)
    );
    let Command::Healthcheck(Healthcheck::Check(h)) = one(
        "HEALTHCHECK --start-period=30s --start-interval=5s --retries=3 CMD [\"/bin/check\", \"-q\"]",
    ) else {
        panic!("expected a check");
    };
    assert_eq!(h.test, vec!["CMD", "/bin/check", "-q"]);
    assert_eq!(h.start_period, Some(Duration::from_secs(30)));
    assert_eq!(h.start_interval, Some(Duration::from_secs(5)));
    assert_eq!(h.retries, Some(3));
    for text in [
        "HEALTHCHECK",
        "HEALTHCHECK NONE now",
        "HEALTHCHECK --interval=5s NONE",
        "HEALTHCHECK CMD",
        "HEALTHCHECK CMD []",
        "HEALTHCHECK PING x",
        "HEALTHCHECK --interval=5 CMD x",
        "HEALTHCHECK --interval=1us CMD x",
        "HEALTHCHECK --retries=-1 CMD x",
        "HEALTHCHECK --timeout=-3s CMD x",
        "HEALTHCHECK --every=3s CMD x",
    ] {
        assert!(Dockerfile::parse("Dockerfile", text).is_err(), "{text}");
    }
}

// ---- ONBUILD -----------------------------------------------------------

#[test]
fn onbuild_wraps_parsed_instruction() {
    let c = one("ONBUILD ADD . /app/src");
    let Command::Onbuild(o) = c else {
        panic!("not ONBUILD");
    };
    assert_eq!(o.text, "ADD . /app/src");
    assert!(matches!(*o.trigger, Command::Add(_)));
    let Command::Onbuild(o) = one("ONBUILD RUN /usr/local/bin/python-build --dir /app/src") else {
        panic!("not ONBUILD");
    };
    assert_eq!(
        run_of(*o.trigger).command,
        shell("/usr/local/bin/python-build --dir /app/src")
    );
}

#[test]
fn onbuild_rejections() {
    for text in [
        "ONBUILD ONBUILD RUN x",
        "ONBUILD FROM x",
        "ONBUILD maintainer me",
    ] {
        assert!(
            matches!(*err(text).kind, ParseErrorKind::InvalidOnbuild(_)),
            "{text}"
        );
    }
    assert!(matches!(
        *err("ONBUILD").kind,
        ParseErrorKind::Arguments { .. }
    ));
    assert!(matches!(
        *err("ONBUILD FORM x").kind,
        ParseErrorKind::UnknownInstruction { .. }
    ));
    assert!(matches!(
        *err("ONBUILD COPY x").kind,
        ParseErrorKind::Arguments { .. }
    ));
}

// ---- heredocs ----------------------------------------------------------

#[test]
fn heredoc_run_script() {
    let d = parse("FROM debian\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nRUN x\n");
    assert_eq!(d.instructions.len(), 3);
    let r = run_of(d.instructions[1].command.clone());
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(
        r.heredocs[0].content,
        "apt-get update\napt-get install -y curl\n"
    );
    assert!(r.heredocs[0].expand);
    assert_eq!(
        d.instructions[1].span,
        Span {
            start_line: 2,
            end_line: 5,
            column: 1
        }
    );
    assert_eq!(d.instructions[2].span.start_line, 6);
    assert_eq!(
        r.script(),
        RunScript::Shell("apt-get update\napt-get install -y curl\n".into())
    );
}

#[test]
fn heredoc_with_program_and_shebang() {
    let r = run_of(one("RUN <<EOT bash\n  set -ex\n  apt-get update\nEOT\n"));
    assert_eq!(r.heredocs[0].content, "  set -ex\n  apt-get update\n");
    assert_eq!(
        r.script(),
        RunScript::Shell("<<EOT bash\n  set -ex\n  apt-get update\nEOT".into())
    );
    let r = run_of(one(
        "RUN <<EOT\n#!/usr/bin/env python\nprint(\"hello world\")\nEOT\n",
    ));
    assert_eq!(
        r.script(),
        RunScript::File {
            name: "EOT".into(),
            content: "#!/usr/bin/env python\nprint(\"hello world\")\n".into()
        }
    );
    let r = run_of(one("RUN echo plain"));
    assert_eq!(r.script(), RunScript::Command(shell("echo plain")));
}

#[test]
fn several_heredocs_on_one_line() {
    let r = run_of(one(
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n",
    ));
    let names: Vec<&str> = r.heredocs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["FILE1", "FILE2"]);
    assert_eq!(r.heredocs[0].content, "I am\nfirst\n");
    assert_eq!(r.heredocs[1].content, "I am\nsecond\n");
}

#[test]
fn heredoc_copy_sources() {
    let c = copy_of(one(
        "COPY <<robots.txt <<humans.txt /usr/share/nginx/html/\n(robots content)\nrobots.txt\n(humans content)\nhumans.txt\n",
    ));
    assert_eq!(c.dest, "/usr/share/nginx/html/");
    let Source::Heredoc(r) = &c.sources[0] else {
        panic!("not a heredoc");
    };
    assert_eq!(
        (r.name.as_str(), r.content.as_str()),
        ("robots.txt", "(robots content)\n")
    );
    let Source::Heredoc(h) = &c.sources[1] else {
        panic!("not a heredoc");
    };
    assert_eq!(h.content, "(humans content)\n");

    let c = copy_of(one(
        "COPY <<EOF /usr/share/nginx/html/index.html\n(your index page goes here)\nEOF\n",
    ));
    assert_eq!(c.sources.len(), 1);
    assert!(
        matches!(&c.sources[0], Source::Heredoc(h) if h.content == "(your index page goes here)\n")
    );
}

#[test]
fn heredoc_chomp_and_quoting() {
    let c = copy_of(one(
        "COPY <<-EOT /script.sh\n\techo \"hello ${FOO}\"\n\tEOT\n",
    ));
    let Source::Heredoc(h) = &c.sources[0] else {
        panic!("not a heredoc");
    };
    assert_eq!(h.content, "echo \"hello ${FOO}\"\n");
    assert!(h.chomp && h.expand);
    for delim in ["\"EOT\"", "'EOT'", "E\"OT\"", "\\EOT"] {
        let r = run_of(one(&format!("RUN cat <<{delim}\n$HOME\nEOT\n")));
        assert_eq!(r.heredocs[0].name, "EOT", "{delim}");
        assert!(!r.heredocs[0].expand, "{delim}");
    }
    let r = run_of(one("RUN python3 3<<EOF\nx\nEOF\n"));
    assert_eq!(r.heredocs[0].fd, Some(3));
}

#[test]
fn not_heredocs() {
    // Exec form never has heredocs, and neither do here-strings or quoted words.
    let c = commands("RUN [\"cat\", \"<<EOF\"]\nRUN cat <<< hi\nRUN echo '<<EOF'\nENV A=<<EOF\n");
    assert_eq!(c.len(), 4);
    for cmd in &c[..3] {
        assert!(run_of(cmd.clone()).heredocs.is_empty());
    }
}

#[test]
fn heredoc_errors() {
    let e = err("FROM x\nRUN <<EOF\necho hi\n");
    assert_eq!(*e.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()));
    assert_eq!(e.location.line, 2);
    // The terminator must match exactly (no tab stripping without `-`).
    assert!(matches!(
        *err("RUN <<EOF\nx\n\tEOF\n").kind,
        ParseErrorKind::UnterminatedHeredoc(_)
    ));
    assert!(matches!(
        *err("COPY a <<EOF\nx\nEOF\n").kind,
        ParseErrorKind::InvalidHeredoc(_)
    ));
}

#[test]
fn onbuild_heredoc() {
    let Command::Onbuild(o) = one("ONBUILD RUN <<EOF\necho later\nEOF\n") else {
        panic!("not ONBUILD");
    };
    assert_eq!(run_of(*o.trigger).heredocs[0].content, "echo later\n");
}

// ---- errors ------------------------------------------------------------

#[test]
fn unknown_instruction_names_file_line_and_text() {
    let text = "FROM busybox\n\n\n\n\n\nFORM busybox\n";
    let e = err(text);
    assert_eq!(e.location.line, 7);
    assert_eq!(
        e.to_string(),
        "Dockerfile:7:1: unknown instruction: FORM (did you mean FROM?)\n   7 | FORM busybox"
    );
    let e = err("FROM x\n  WRKDIR /x\n");
    assert_eq!(e.location.column, 3);
    assert!(e.to_string().contains("did you mean WORKDIR?"));
}

#[test]
fn arbitrary_input_never_panics() {
    let samples = [
        "\u{feff}",
        "\\",
        "`",
        "RUN \\",
        "# escape=`\n`",
        "FROM \u{0}",
        "RUN <<",
        "RUN <<-",
        "RUN 99999999999999999999<<EOF\nEOF",
        "COPY <<\"\" x",
        "ENV \"",
        "LABEL 'a",
        "ARG \\",
        "HEALTHCHECK --interval=99999999999999999999h CMD x",
        "RUN --mount=\"",
        "\r\r\r",
        "FROM a\r\nRUN b\\\r\n",
        "ONBUILD ONBUILD",
        "EXPOSE \u{a0}",
        "RUN [\"\\ud800\"]",
    ];
    for s in samples {
        let _ = Dockerfile::parse("Dockerfile", s);
    }
}
