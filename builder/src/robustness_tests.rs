//! Generated inputs: the parser, planner, expander and `.dockerignore`
//! matcher must return errors, never panic.

use crate::context::Dockerignore;
use crate::dockerfile::expand::{expand_heredoc, expand_word, expand_words, split_words};
use crate::dockerfile::{Command, Dockerfile};
use crate::plan::{BuildOptions, Plan, Platform};

const TOKENS: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "EXPOSE ",
    "VOLUME ",
    "SHELL ",
    "--mount=",
    "type=cache,",
    "target=",
    "--from=",
    "--platform=",
    "<<EOF",
    "<<-E",
    "EOF",
    "E",
    "\n",
    "\t",
    " ",
    "\\",
    "`",
    "\"",
    "'",
    "$",
    "${",
    "}",
    ":-",
    ":?",
    "#",
    "##",
    "%",
    "/",
    "//",
    "*",
    "**",
    "[",
    "]",
    "^",
    "!",
    "=",
    "[\"a\"]",
    "AS ",
    "x",
    "0",
    "é",
    "\r",
    "# escape=`\n",
    "\u{feff}",
    "..",
    "-",
    "NONE",
    "CMD",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

fn generate(rng: &mut Lcg) -> String {
    let len = 1 + rng.next() % 40;
    (0..len)
        .map(|_| TOKENS[rng.next() % TOKENS.len()])
        .collect()
}

fn exercise_plan(df: &Dockerfile) {
    let opts = BuildOptions::new(Platform::new("linux", "amd64", None));
    let Ok(plan) = Plan::new(df, &opts) else {
        return;
    };
    for stage in &plan.stages {
        let mut scope = plan.scope(vec![("PATH".into(), "/bin".into())]);
        for inst in &stage.instructions {
            match &inst.command {
                Command::Arg(d) => {
                    let _ = scope.declare_args(d);
                }
                Command::Env(kv) => {
                    let _ = scope.apply_env(kv);
                }
                Command::Label(kv) => {
                    let _ = scope.expand_pairs(kv);
                }
                Command::Workdir(w) | Command::User(w) => {
                    let _ = scope.expand(w);
                }
                Command::Expose(words) | Command::Volume(words) => {
                    for w in words {
                        let _ = scope.expand_words(w);
                    }
                }
                Command::Run(r) => {
                    let _ = r.script();
                    for h in &r.heredocs {
                        let _ = scope.expand_heredoc(&h.content);
                    }
                }
                _ => {}
            }
        }
        let _ = scope.run_env();
    }
}

#[test]
fn generated_inputs_never_panic() {
    let mut rng = Lcg(0x5eed);
    let lookup = |n: &str| {
        n.starts_with(char::is_uppercase)
            .then(|| format!("v{n} *x"))
    };
    for _ in 0..4000 {
        let text = generate(&mut rng);
        if let Ok(df) = Dockerfile::parse("Dockerfile", &text) {
            exercise_plan(&df);
        }
        for esc in ['\\', '`'] {
            let _ = expand_word(&text, esc, &lookup);
            let _ = expand_words(&text, esc, &lookup);
            let _ = expand_heredoc(&text, esc, &lookup);
            let _ = split_words(&text, esc);
        }
        if let Ok(ignore) = Dockerignore::parse(&text) {
            for path in ["a", "a/b/c", "x/EOF", "é/[", ".."] {
                let _ = ignore.is_excluded(path);
                let _ = ignore.can_skip_dir(path);
            }
        }
    }
}
