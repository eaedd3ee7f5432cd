//! Planning tests, mostly from the Dockerfile reference's examples.

use std::collections::BTreeMap;

use super::*;
use crate::dockerfile::{ArgDecl, Command, Dockerfile};

fn df(text: &str) -> Dockerfile {
    match Dockerfile::parse("Dockerfile", text) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn opts() -> BuildOptions {
    let mut o = BuildOptions::new(Platform::new("linux", "arm64", None));
    o.build_platform = Platform::new("linux", "amd64", None);
    o
}

fn with_args(pairs: &[(&str, &str)]) -> BuildOptions {
    let mut o = opts();
    o.build_args = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    o
}

fn plan(text: &str, o: &BuildOptions) -> Plan {
    match Plan::new(&df(text), o) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn plan_err(text: &str, o: &BuildOptions) -> PlanError {
    match Plan::new(&df(text), o) {
        Ok(p) => panic!("expected an error, got {:?}", p.order),
        Err(e) => e,
    }
}

/// Runs the stage's ARG/ENV instructions through a scope, as the executor
/// would, expanding USER lines into the returned list.
fn walk<'p>(p: &'p Plan, stage: usize, base_env: &[(&str, &str)]) -> (StageScope<'p>, Vec<String>) {
    let env = base_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut scope = p.scope(env);
    let mut users = Vec::new();
    for inst in &p.stages[stage].instructions {
        match &inst.command {
            Command::Arg(d) => scope.declare_args(d).expect("arg"),
            Command::Env(kv) => {
                scope.apply_env(kv).expect("env");
            }
            Command::User(u) => users.push(scope.expand(u).expect("user")),
            _ => {}
        }
    }
    (scope, users)
}

fn get(list: &[(String, String)], key: &str) -> Option<String> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

const MULTI_STAGE: &str = "# syntax=docker/dockerfile:1
FROM golang:1.23
WORKDIR /src
COPY <<EOF ./main.go
package main
EOF
RUN go build -o /bin/hello ./main.go

FROM scratch
COPY --from=0 /bin/hello /bin/hello
CMD [\"/bin/hello\"]
";

#[test]
fn stages_by_index() {
    let p = plan(MULTI_STAGE, &opts());
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].base, BaseRef::Image("golang:1.23".into()));
    assert_eq!(p.stages[0].instructions.len(), 3);
    assert_eq!(p.stages[1].base, BaseRef::Scratch);
    assert_eq!(p.stages[1].deps, vec![0]);
    assert_eq!(p.stages[1].display_name(), "stage-1");
    assert_eq!((p.target, p.order.clone()), (1, vec![0, 1]));
}

#[test]
fn named_stages_and_target() {
    let text = "FROM golang:1.23 AS build\nRUN go build -o /bin/hello\nFROM scratch\nCOPY --from=build /bin/hello /bin/hello\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[1].deps, vec![0]);
    let mut o = opts();
    o.target = Some("BUILD".into());
    let p = plan(text, &o);
    assert_eq!((p.target, p.order.clone()), (0, vec![0]));
    assert_eq!(
        p.target_stage().and_then(|s| s.name.clone()).as_deref(),
        Some("build")
    );
    assert!(!p.is_needed(1));
}

#[test]
fn previous_stage_as_base_and_pruning() {
    let text = "FROM alpine:latest AS builder
RUN apk --no-cache add build-base

FROM builder AS build1
COPY source1.cpp source.cpp
RUN g++ -o /binary source.cpp

FROM builder AS build2
COPY source2.cpp source.cpp
RUN g++ -o /binary source.cpp
";
    let mut o = opts();
    o.target = Some("build1".into());
    let p = plan(text, &o);
    assert_eq!(p.stages[1].base, BaseRef::Stage(0));
    assert_eq!(p.stages[2].base, BaseRef::Stage(0));
    assert_eq!(p.order, vec![0, 1]);
    let p = plan(text, &opts());
    assert_eq!(p.order, vec![0, 2]);
    assert_eq!(p.stage_by_name("Build2").map(|s| s.index), Some(2));
}

#[test]
fn diamond_order_is_deterministic() {
    let text = "FROM alpine AS a\nFROM a AS b\nFROM a AS c\nFROM scratch AS unused\nFROM scratch\nCOPY --from=c /x /x\nCOPY --from=b /y /y\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[4].deps, vec![1, 2]);
    assert_eq!(p.order, vec![0, 1, 2, 4]);
}

#[test]
fn external_images_and_mount_dependencies() {
    let text = "FROM alpine AS deps\nFROM alpine\nCOPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf\nRUN --mount=type=bind,from=deps,source=/x,target=/y --mount=type=cache,target=/c,from=busybox true\nCOPY --from=nginx:latest /a /b\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[1].deps, vec![0]);
    assert_eq!(p.stages[1].images, vec!["nginx:latest", "busybox"]);
    assert_eq!(p.order, vec![0, 1]);
}

#[test]
fn stage_names_are_case_insensitive() {
    let p = plan(
        "FROM alpine AS Build\nFROM scratch\nCOPY --from=BUILD /a /a\n",
        &opts(),
    );
    assert_eq!(p.stages[0].name.as_deref(), Some("build"));
    assert_eq!(p.stages[1].deps, vec![0]);
}

#[test]
fn global_args_in_from() {
    let text = "ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[0].base, BaseRef::Image("base:latest".into()));
    assert_eq!(p.stages[1].base, BaseRef::Image("extras:latest".into()));
    let p = plan(text, &with_args(&[("CODE_VERSION", "1.2")]));
    assert_eq!(p.stages[0].base, BaseRef::Image("base:1.2".into()));
    assert!(p.unused_build_args.is_empty());
}

#[test]
fn global_arg_needs_redeclaration_in_stage() {
    let text = "ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\nRUN echo $VERSION > image_version\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[0].base, BaseRef::Image("busybox:latest".into()));
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(scope.lookup("VERSION").as_deref(), Some("latest"));
    assert_eq!(get(&scope.run_env(), "VERSION").as_deref(), Some("latest"));

    let text = "ARG VERSION=latest\nFROM busybox:$VERSION\nRUN echo $VERSION\n";
    let p = plan(text, &opts());
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(scope.lookup("VERSION"), None);
}

#[test]
fn global_args_see_earlier_ones_and_build_args() {
    let text = "ARG REG=docker.io\nARG IMG=${REG}/library/alpine\nFROM $IMG\n";
    assert_eq!(
        plan(text, &opts()).stages[0].base,
        BaseRef::Image("docker.io/library/alpine".into())
    );
    assert_eq!(
        plan(text, &with_args(&[("REG", "ghcr.io")])).stages[0].base,
        BaseRef::Image("ghcr.io/library/alpine".into())
    );
}

#[test]
fn arg_usage_before_declaration_uses_default() {
    // Reference example: USER ${username:-some_user} before ARG username.
    let text = "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n";
    let p = plan(text, &with_args(&[("username", "what_user")]));
    let (_, users) = walk(&p, 0, &[]);
    assert_eq!(users, vec!["some_user", "what_user"]);
}

#[test]
fn env_overrides_arg() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n";
    let p = plan(text, &with_args(&[("CONT_IMG_VER", "v2.0.1")]));
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(scope.lookup("CONT_IMG_VER").as_deref(), Some("v1.0.0"));
    assert_eq!(
        get(&scope.run_env(), "CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );
}

#[test]
fn env_defaulting_from_arg() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN echo $CONT_IMG_VER\n";
    let p = plan(text, &with_args(&[("CONT_IMG_VER", "v2.0.1")]));
    assert_eq!(
        walk(&p, 0, &[]).0.lookup("CONT_IMG_VER").as_deref(),
        Some("v2.0.1")
    );
    let p = plan(text, &opts());
    assert_eq!(
        walk(&p, 0, &[]).0.lookup("CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );
}

#[test]
fn env_pairs_expand_with_previous_state() {
    let text = "FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n";
    let p = plan(text, &opts());
    let (scope, _) = walk(&p, 0, &[]);
    let env = scope.env();
    assert_eq!(get(env, "abc").as_deref(), Some("bye"));
    assert_eq!(get(env, "def").as_deref(), Some("hello"));
    assert_eq!(get(env, "ghi").as_deref(), Some("bye"));
}

#[test]
fn env_reference_quoting_and_base_env() {
    let text = "FROM busybox\nENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy\nENV PATH=/opt/bin:$PATH\nENV LEGACY some value\n";
    let p = plan(text, &opts());
    let (scope, _) = walk(&p, 0, &[("PATH", "/usr/bin:/bin")]);
    let env = scope.env();
    assert_eq!(get(env, "MY_NAME").as_deref(), Some("John Doe"));
    assert_eq!(get(env, "MY_DOG").as_deref(), Some("Rex The Dog"));
    assert_eq!(get(env, "MY_CAT").as_deref(), Some("fluffy"));
    assert_eq!(get(env, "PATH").as_deref(), Some("/opt/bin:/usr/bin:/bin"));
    assert_eq!(get(env, "LEGACY").as_deref(), Some("some value"));
    assert_eq!(env[0].0, "PATH");
}

#[test]
fn label_expansion_removes_quotes() {
    let p = plan(
        "FROM busybox\nARG V=1.0\nLABEL \"com.example.vendor\"=\"ACME Incorporated\" version=$V\n",
        &opts(),
    );
    let (scope, _) = walk(&p, 0, &[]);
    let Command::Label(pairs) = &p.stages[0].instructions[1].command else {
        panic!("not LABEL");
    };
    let got = scope.expand_pairs(pairs).expect("expands");
    assert_eq!(
        got,
        vec![
            (
                "com.example.vendor".to_string(),
                "ACME Incorporated".to_string()
            ),
            ("version".to_string(), "1.0".to_string())
        ]
    );
}

#[test]
fn arg_defaults_are_sequential_and_expanded() {
    let p = plan(
        "FROM busybox\nENV BASE=/opt\nARG a=1 b=${a}2 DIR=$BASE/x MSG=\"hello world\"\n",
        &opts(),
    );
    let (scope, _) = walk(&p, 0, &[]);
    let args = scope.args();
    assert_eq!(get(&args, "b").as_deref(), Some("12"));
    assert_eq!(get(&args, "DIR").as_deref(), Some("/opt/x"));
    assert_eq!(get(&args, "MSG").as_deref(), Some("hello world"));
}

#[test]
fn args_do_not_cross_stages() {
    let p = plan(
        "FROM busybox AS one\nARG X=1\nFROM one\nRUN echo $X\n",
        &opts(),
    );
    let (scope, _) = walk(&p, 1, &[]);
    assert_eq!(scope.lookup("X"), None);
}

#[test]
fn predefined_platform_args() {
    let text = "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDPLATFORM\nARG TARGETVARIANT\nFROM alpine\n";
    let p = plan(text, &opts());
    assert_eq!(p.stages[0].platform.to_string(), "linux/amd64");
    assert!(p.stages[0].platform_explicit);
    assert_eq!(p.stages[1].platform.to_string(), "linux/arm64");
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(
        scope.lookup("TARGETPLATFORM").as_deref(),
        Some("linux/arm64")
    );
    assert_eq!(scope.lookup("TARGETARCH").as_deref(), Some("arm64"));
    assert_eq!(
        scope.lookup("BUILDPLATFORM").as_deref(),
        Some("linux/amd64")
    );
    assert_eq!(scope.lookup("TARGETVARIANT").as_deref(), Some(""));
    // Not visible without an ARG line.
    let (scope, _) = walk(&p, 1, &[]);
    assert_eq!(scope.lookup("TARGETPLATFORM"), None);
}

#[test]
fn platform_args_in_from_image() {
    let p = plan("FROM alpine:${TARGETARCH}\n", &opts());
    assert_eq!(p.stages[0].base, BaseRef::Image("alpine:arm64".into()));
}

#[test]
fn proxy_args_reach_run_without_declaration() {
    let p = plan(
        "FROM alpine\nRUN wget x\n",
        &with_args(&[("HTTP_PROXY", "http://proxy:3128"), ("UNUSED", "1")]),
    );
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(scope.lookup("HTTP_PROXY"), None);
    assert_eq!(
        get(&scope.run_env(), "HTTP_PROXY").as_deref(),
        Some("http://proxy:3128")
    );
    assert_eq!(p.unused_build_args, vec!["UNUSED"]);
}

#[test]
fn unused_build_args_consider_needed_stages_only() {
    let text = "FROM alpine AS a\nARG ONLY_A\nFROM alpine AS b\nARG ONLY_B\n";
    let mut o = with_args(&[("ONLY_A", "1"), ("ONLY_B", "2")]);
    o.target = Some("b".into());
    assert_eq!(plan(text, &o).unused_build_args, vec!["ONLY_A"]);
}

#[test]
fn build_arg_beats_default_and_global() {
    let text = "ARG V=global\nFROM alpine\nARG V=stage\nARG W\n";
    let p = plan(text, &with_args(&[("V", "cli")]));
    assert_eq!(walk(&p, 0, &[]).0.lookup("V").as_deref(), Some("cli"));
    let p = plan(text, &opts());
    let (scope, _) = walk(&p, 0, &[]);
    assert_eq!(scope.lookup("V").as_deref(), Some("stage"));
    assert_eq!(scope.lookup("W"), None);
    assert!(scope.run_env().iter().all(|(k, _)| k != "W"));
}

#[test]
fn declare_args_directly() {
    let p = plan("ARG G=g\nFROM alpine\n", &opts());
    let mut scope = p.scope(vec![]);
    scope
        .declare_args(&[ArgDecl {
            name: "G".into(),
            default: None,
        }])
        .expect("ok");
    assert_eq!(scope.lookup("G").as_deref(), Some("g"));
    assert_eq!(p.meta_value("G").as_deref(), Some("g"));
    assert_eq!(p.expand_global("img:$G").as_deref(), Ok("img:g"));
}

#[test]
fn backtick_escape_in_expansion() {
    let p = plan("# escape=`\nARG D=C:\\data\nFROM alpine\nARG D\n", &opts());
    let scope = walk(&p, 0, &[]).0;
    assert_eq!(scope.expand("$D\\x `$D").as_deref(), Ok("C:\\data\\x $D"));
}

#[test]
fn heredoc_expansion_through_scope() {
    let p = plan("FROM alpine\nENV FOO=bar\n", &opts());
    let scope = walk(&p, 0, &[]).0;
    assert_eq!(
        scope.expand_heredoc("echo \"hello ${FOO}\"\n").as_deref(),
        Ok("echo \"hello bar\"\n")
    );
    assert_eq!(
        scope.expand_words("80 $FOO").expect("ok"),
        vec!["80", "bar"]
    );
}

#[test]
fn resolve_source_api() {
    let p = plan(
        "ARG S=first\nFROM alpine AS first\nFROM alpine AS second\n",
        &opts(),
    );
    assert_eq!(p.resolve_source(1, "$S"), Ok(SourceRef::Stage(0)));
    assert_eq!(p.resolve_source(1, "0"), Ok(SourceRef::Stage(0)));
    assert_eq!(p.resolve_source(1, ""), Ok(SourceRef::Context));
    assert_eq!(
        p.resolve_source(1, "redis:7"),
        Ok(SourceRef::Image("redis:7".into()))
    );
    assert!(matches!(
        p.resolve_source(0, "second"),
        Err(PlanErrorKind::LaterStage { .. })
    ));
    assert!(matches!(
        p.resolve_source(1, "7"),
        Err(PlanErrorKind::InvalidStageIndex { index: 7, count: 2 })
    ));
}

// ---- errors ------------------------------------------------------------

#[test]
fn unknown_target_lists_stages() {
    let mut o = opts();
    o.target = Some("tset".into());
    let e = plan_err("FROM a AS build\nFROM b AS test\n", &o);
    assert_eq!(
        e.kind,
        PlanErrorKind::UnknownTarget {
            target: "tset".into(),
            available: vec!["build".into(), "test".into()]
        }
    );
    assert!(e.to_string().contains("build, test"));
}

#[test]
fn instructions_before_from() {
    let e = plan_err("ARG X=1\nRUN echo hi\nFROM alpine\n", &opts());
    assert_eq!(e.kind, PlanErrorKind::BeforeFrom("RUN".into()));
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(2));
    assert!(e
        .to_string()
        .starts_with("Dockerfile:2:1: RUN before the first FROM"));
    let e = plan_err("ARG X=1\n", &opts());
    assert!(matches!(e.kind, PlanErrorKind::NoStages(_)));
    assert!(matches!(
        plan_err("", &opts()).kind,
        PlanErrorKind::NoStages(_)
    ));
}

#[test]
fn duplicate_stage_names() {
    let e = plan_err("FROM a AS x\nFROM b AS X\n", &opts());
    assert_eq!(
        e.kind,
        PlanErrorKind::DuplicateStageName {
            name: "x".into(),
            first_line: 1
        }
    );
}

#[test]
fn copy_from_later_stage_or_self() {
    let e = plan_err(
        "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n",
        &opts(),
    );
    assert!(matches!(e.kind, PlanErrorKind::LaterStage { ref stage, .. } if stage == "b"));
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(2));
    let e = plan_err("FROM alpine\nCOPY --from=1 /x /x\nFROM alpine\n", &opts());
    assert!(matches!(e.kind, PlanErrorKind::LaterStage { .. }));
    let e = plan_err("FROM alpine AS self\nCOPY --from=self /x /x\n", &opts());
    assert!(matches!(e.kind, PlanErrorKind::LaterStage { .. }));
    let e = plan_err(
        "FROM alpine\nRUN --mount=from=later,target=/x true\nFROM alpine AS later\n",
        &opts(),
    );
    assert!(matches!(e.kind, PlanErrorKind::LaterStage { .. }));
    let e = plan_err("FROM alpine\nCOPY --from=5 /x /x\n", &opts());
    assert_eq!(
        e.kind,
        PlanErrorKind::InvalidStageIndex { index: 5, count: 1 }
    );
}

#[test]
fn from_a_later_name_is_an_image() {
    // As in BuildKit, FROM only sees earlier stages.
    let p = plan("FROM later\nFROM alpine AS later\n", &opts());
    assert_eq!(p.stages[0].base, BaseRef::Image("later".into()));
    let p = plan("FROM node AS node\n", &opts());
    assert_eq!(p.stages[0].base, BaseRef::Image("node".into()));
}

#[test]
fn blank_base_and_bad_platform() {
    let e = plan_err("FROM ${NOPE}\n", &opts());
    assert_eq!(e.kind, PlanErrorKind::BlankBaseName("${NOPE}".into()));
    let e = plan_err("ARG P=linux/\nFROM --platform=$P alpine\n", &opts());
    assert!(matches!(e.kind, PlanErrorKind::Platform(_)));
    let e = plan_err("FROM ${IMG:?set-IMG}\n", &opts());
    assert_eq!(
        e.kind,
        PlanErrorKind::Expand(ExpandError::Required {
            name: "IMG".into(),
            message: "set-IMG".into()
        })
    );
    assert!(e.to_string().contains("   1 | FROM ${IMG:?set-IMG}"));
}

#[test]
fn named_contexts_replace_stages_and_images() {
    let mut o = opts();
    for spec in [
        "base=docker-image://localhost/busybox:latest",
        "Tools=oci-layout:///srv/layout:v1",
        "files=./extra",
    ] {
        let (n, c) = NamedContext::parse(spec).expect(spec);
        o.named_contexts.insert(n, c);
    }
    let p = plan(
        "FROM base AS first\nFROM alpine AS tools\nCOPY --from=files a /a\nCOPY --from=tools b /b\n",
        &o,
    );
    assert_eq!(
        p.stages[0].base,
        BaseRef::Image("localhost/busybox:latest".into())
    );
    assert_eq!(
        p.resolve_source(1, "files"),
        Ok(SourceRef::Dir("./extra".into()))
    );
    // A named context wins over a stage of the same name.
    assert_eq!(
        p.resolve_source(1, "tools"),
        Ok(SourceRef::Image("oci:/srv/layout:v1".into()))
    );
    assert!(p.stages[1]
        .images
        .contains(&"oci:/srv/layout:v1".to_string()));
    let err = Plan::new(
        &Dockerfile::parse("Dockerfile", "FROM files\n").expect("parse"),
        &o,
    )
    .expect_err("dir as base");
    assert!(
        err.to_string().contains("--build-context directory"),
        "{err}"
    );
    for bad in ["noequals", "=x", "n=", "n=https://x/y.git"] {
        assert!(NamedContext::parse(bad).is_err(), "{bad}");
    }
}
