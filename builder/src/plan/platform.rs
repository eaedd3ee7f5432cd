//! Target and build platforms (`os/arch[/variant]`) and the ARGs derived
//! from them.

use std::fmt;

use thiserror::Error;

/// A platform string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid platform {value:?}: {reason} (use os/arch[/variant], e.g. linux/arm64)")]
pub struct PlatformError {
    /// The text given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// An OS/architecture pair, normalised the way OCI image indexes spell it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, `riscv64`, ...
    pub architecture: String,
    /// `v7` for arm, `v8` is dropped for arm64; usually none.
    pub variant: Option<String>,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

impl Platform {
    /// Builds a normalised platform (`x86_64` -> `amd64`, `aarch64` ->
    /// `arm64`, arm defaults to `v7`, `arm64/v8` drops the variant).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase);
        let (arch, variant) = match architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant.filter(|v| v != "v1")),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                variant.filter(|v| v != "v8" && v != "8"),
            ),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => {
                let v = match variant.as_deref() {
                    None => "v7".to_string(),
                    Some(v @ ("5" | "6" | "7" | "8")) => format!("v{v}"),
                    Some(v) => v.to_string(),
                };
                ("arm".to_string(), Some(v))
            }
            "i386" | "i686" | "386" => ("386".to_string(), variant),
            other => (other.to_string(), variant),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// Parses `os/arch[/variant]`; a single word is an OS (with the host
    /// architecture) if it names one, otherwise an architecture on linux.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let err = |reason: &str| PlatformError {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if parts.iter().any(|p| !valid(p)) {
            return Err(err(
                "components must be non-empty and use only letters, digits, '_', '-', '.'",
            ));
        }
        match parts.as_slice() {
            [one] => {
                let lower = one.to_ascii_lowercase();
                if KNOWN_OS.contains(&lower.as_str()) || lower == "macos" {
                    Ok(Platform::new(one, &Platform::host().architecture, None))
                } else {
                    Ok(Platform::new("linux", one, None))
                }
            }
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(err("too many components")),
        }
    }

    /// The platform this process runs on.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// The four ARGs for this platform with the given prefix (`TARGET` or
    /// `BUILD`): `<P>PLATFORM`, `<P>OS`, `<P>ARCH`, `<P>VARIANT`.
    pub fn args(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (
                format!("{prefix}VARIANT"),
                self.variant.clone().unwrap_or_default(),
            ),
        ]
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalise() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("Linux/ARM64", "linux/arm64"),
            ("linux/riscv64", "linux/riscv64"),
            ("windows/amd64", "windows/amd64"),
            ("arm64", "linux/arm64"),
            ("linux/i386", "linux/386"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Platform::parse(input).map(|p| p.to_string()).as_deref(),
                Ok(want),
                "{input}"
            );
        }
        for bad in [
            "",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/am d64",
            "$TARGETPLATFORM",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_args() {
        let p = Platform::parse("linux/arm/v7").expect("ok");
        assert_eq!(
            p.args("TARGET"),
            vec![
                ("TARGETPLATFORM".to_string(), "linux/arm/v7".to_string()),
                ("TARGETOS".to_string(), "linux".to_string()),
                ("TARGETARCH".to_string(), "arm".to_string()),
                ("TARGETVARIANT".to_string(), "v7".to_string()),
            ]
        );
        let host = Platform::host();
        assert!(!host.os.is_empty() && !host.architecture.is_empty());
    }
}
