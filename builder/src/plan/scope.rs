//! Variables visible while executing one stage: ENV values (starting from
//! the base image's), ARGs declared in the stage, and how they combine for
//! expansion and for RUN.

use crate::dockerfile::expand::{expand_heredoc, expand_word, expand_words, ExpandError};
use crate::dockerfile::{ArgDecl, KeyValue};

use super::{Plan, PROXY_ARGS};

/// Variable state of one stage during execution.
///
/// Rules (from the Dockerfile reference):
/// - an ARG is visible only after its `ARG` line in the same stage;
/// - `ARG NAME` without a default takes the `--build-arg` value, else the
///   global (before the first FROM) value, else stays unset;
/// - `ARG NAME=default` takes the `--build-arg` value, else the default
///   expanded with the variables visible at that point;
/// - ENV always wins over an ARG of the same name;
/// - all pairs of one ENV instruction are expanded with the values from
///   before that instruction;
/// - proxy build args (`HTTP_PROXY`...) reach RUN without an ARG line but
///   are not used for expansion.
#[derive(Debug, Clone)]
pub struct StageScope<'p> {
    plan: &'p Plan,
    env: Vec<(String, String)>,
    args: Vec<(String, Option<String>)>,
}

impl Plan {
    /// A fresh variable scope for executing a stage whose base has
    /// environment `base_env` (here, not in plan/mod.rs, so that the scope
    /// depends on the plan and not the other way round).
    pub fn scope(&self, base_env: Vec<(String, String)>) -> StageScope<'_> {
        StageScope::new(self, base_env)
    }
}

fn upsert<V>(list: &mut Vec<(String, V)>, key: &str, value: V) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key.to_string(), value)),
    }
}

impl<'p> StageScope<'p> {
    /// Starts a stage whose base has environment `base_env` (the base
    /// image's config `Env`, or the parent stage's final ENV).
    pub fn new(plan: &'p Plan, base_env: Vec<(String, String)>) -> Self {
        let mut env = Vec::new();
        for (k, v) in base_env {
            upsert(&mut env, &k, v);
        }
        StageScope {
            plan,
            env,
            args: Vec::new(),
        }
    }

    /// The value of `name` for expansion: ENV first, then declared ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    /// Expands one word (quotes removed) with the current variables.
    pub fn expand(&self, word: &str) -> Result<String, ExpandError> {
        expand_word(word, self.plan.escape, &|n| self.lookup(n))
    }

    /// Expands and splits into words (EXPOSE, for example).
    pub fn expand_words(&self, word: &str) -> Result<Vec<String>, ExpandError> {
        expand_words(word, self.plan.escape, &|n| self.lookup(n))
    }

    /// Expands a heredoc body (only for unquoted delimiters).
    pub fn expand_heredoc(&self, content: &str) -> Result<String, ExpandError> {
        expand_heredoc(content, '\\', &|n| self.lookup(n))
    }

    /// Applies an `ARG` instruction. Each declaration sees the ones before
    /// it on the same line.
    pub fn declare_args(&mut self, decls: &[ArgDecl]) -> Result<(), ExpandError> {
        for d in decls {
            let value = if let Some(v) = self.plan.build_args.get(&d.name) {
                Some(v.clone())
            } else if let Some(default) = &d.default {
                Some(self.expand(default)?)
            } else {
                self.plan.meta_value(&d.name)
            };
            upsert(&mut self.args, &d.name, value);
        }
        Ok(())
    }

    /// Expands key/value pairs (ENV, LABEL) against the current variables,
    /// all pairs seeing the same state.
    pub fn expand_pairs(&self, pairs: &[KeyValue]) -> Result<Vec<(String, String)>, ExpandError> {
        pairs
            .iter()
            .map(|p| Ok((self.expand(&p.key)?, self.expand(&p.value)?)))
            .collect()
    }

    /// Applies an `ENV` instruction and returns the expanded pairs.
    pub fn apply_env(&mut self, pairs: &[KeyValue]) -> Result<Vec<(String, String)>, ExpandError> {
        let expanded = self.expand_pairs(pairs)?;
        for (k, v) in &expanded {
            upsert(&mut self.env, k, v.clone());
        }
        Ok(expanded)
    }

    /// The ENV of the stage so far (what goes in the image config).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARGs declared in this stage that have a value.
    pub fn args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// The environment for a RUN: ENV, then ARGs not shadowed by ENV, then
    /// proxy build args not otherwise set.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in self.args() {
            if !out.iter().any(|(e, _)| *e == k) {
                out.push((k, v));
            }
        }
        for name in PROXY_ARGS {
            if let Some(v) = self.plan.build_args.get(*name) {
                if !out.iter().any(|(e, _)| e == name) {
                    out.push((name.to_string(), v.clone()));
                }
            }
        }
        out
    }
}
