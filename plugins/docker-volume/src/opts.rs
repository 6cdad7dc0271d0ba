//! The `--opt` options of `docker volume create` (and `volume-opt=` of `--mount`), merged
//! over the defaults of the configuration file. Unknown options and bad values are refused
//! with a message a person understands.

use std::collections::BTreeMap;

use strata_model::size::{parse_size_kib, DefaultUnit, InvalidSize};

/// Every option the plugin knows.
pub const KNOWN: &[&str] = &[
    "size",
    "fs",
    "fsopts",
    "mountopts",
    "replicas",
    "nodes",
    "storagepool",
    "disklessstoragepool",
    "resourcegroup",
    "replicasonsame",
    "replicasondifferent",
    "donotplacewithregex",
    "disklessonremaining",
];

/// Size of a volume whose creator named none.
pub const DEFAULT_SIZE_KIB: u64 = 100 * 1024;
/// File systems the plugin makes.
pub const FILE_SYSTEMS: &[&str] = &["ext4", "xfs"];

/// An option that is unknown or has a value the plugin cannot use; `value` is as given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OptError {
    #[error(
        "invalid size '{value}': {source}; write it as people do, e.g. 64M, 10GiB or 1.5T (a plain number is MiB)"
    )]
    Size {
        value: String,
        #[source]
        source: InvalidSize,
    },
    #[error("invalid size '{value}': a volume cannot be empty")]
    EmptySize { value: String },
    #[error("unsupported file system '{value}'; use one of: {}", FILE_SYSTEMS.join(", "))]
    FileSystem { value: String },
    #[error("invalid replicas '{value}': use a whole number from 1 to 16")]
    Replicas { value: String },
    #[error("invalid donotplacewithregex '{value}': {source}")]
    Regex {
        value: String,
        #[source]
        source: regex::Error,
    },
    #[error("invalid disklessonremaining '{value}': use true or false")]
    DisklessOnRemaining { value: String },
    #[error("unknown option '{key}'; the options are: {}", KNOWN.join(", "))]
    Unknown { key: String },
}

/// What a volume is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeOpts {
    pub size_kib: u64,
    pub fs: String,
    pub fsopts: String,
    pub mountopts: String,
    /// `None`: the resource group's (or the controller's) place count.
    pub replicas: Option<u32>,
    pub nodes: Vec<String>,
    pub storage_pool: Option<String>,
    pub diskless_storage_pool: Option<String>,
    pub resource_group: Option<String>,
    pub replicas_on_same: Vec<String>,
    pub replicas_on_different: Vec<String>,
    pub do_not_place_with_regex: Option<String>,
    pub diskless_on_remaining: Option<bool>,
}

impl Default for VolumeOpts {
    fn default() -> Self {
        VolumeOpts {
            size_kib: DEFAULT_SIZE_KIB,
            fs: "ext4".into(),
            fsopts: String::new(),
            mountopts: String::new(),
            replicas: None,
            nodes: Vec::new(),
            storage_pool: None,
            diskless_storage_pool: None,
            resource_group: None,
            replicas_on_same: Vec::new(),
            replicas_on_different: Vec::new(),
            do_not_place_with_regex: None,
            diskless_on_remaining: None,
        }
    }
}

fn list(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Applies `given` (option name -> value, names case-insensitive) over `base`.
pub fn apply(base: &VolumeOpts, given: &BTreeMap<String, String>) -> Result<VolumeOpts, OptError> {
    let mut o = base.clone();
    for (key, value) in given {
        let k = key.to_ascii_lowercase();
        let v = value.as_str();
        match k.as_str() {
            "size" => {
                let kib = parse_size_kib(v, DefaultUnit::MiB).map_err(|source| OptError::Size {
                    value: v.to_string(),
                    source,
                })?;
                if kib == 0 {
                    return Err(OptError::EmptySize {
                        value: v.to_string(),
                    });
                }
                o.size_kib = kib;
            }
            "fs" => {
                let fs = v.trim().to_ascii_lowercase();
                if !FILE_SYSTEMS.contains(&fs.as_str()) {
                    return Err(OptError::FileSystem {
                        value: v.to_string(),
                    });
                }
                o.fs = fs;
            }
            "fsopts" => o.fsopts = v.trim().to_string(),
            "mountopts" => o.mountopts = v.trim().to_string(),
            "replicas" => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or_else(|| OptError::Replicas {
                        value: v.to_string(),
                    })?;
                o.replicas = Some(n);
            }
            "nodes" => o.nodes = list(v),
            "storagepool" => o.storage_pool = non_empty(v),
            "disklessstoragepool" => o.diskless_storage_pool = non_empty(v),
            "resourcegroup" => o.resource_group = non_empty(v),
            "replicasonsame" => o.replicas_on_same = list(v),
            "replicasondifferent" => o.replicas_on_different = list(v),
            "donotplacewithregex" => {
                if let Some(re) = non_empty(v) {
                    if let Err(source) = regex::Regex::new(&re) {
                        return Err(OptError::Regex { value: re, source });
                    }
                    o.do_not_place_with_regex = Some(re);
                }
            }
            "disklessonremaining" => {
                o.diskless_on_remaining = Some(match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => true,
                    "false" | "no" | "0" | "off" => false,
                    _ => {
                        return Err(OptError::DisklessOnRemaining {
                            value: v.to_string(),
                        })
                    }
                });
            }
            _ => return Err(OptError::Unknown { key: key.clone() }),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_as_people_write_them() {
        let o = apply(
            &VolumeOpts::default(),
            &given(&[
                ("size", "64M"),
                ("FS", "XFS"),
                ("replicas", "2"),
                ("nodes", "alpha, bravo"),
                ("disklessonremaining", "yes"),
                ("fsopts", "-m 0"),
            ]),
        )
        .unwrap();
        assert_eq!(o.size_kib, 65536);
        assert_eq!(o.fs, "xfs");
        assert_eq!(o.replicas, Some(2));
        assert_eq!(o.nodes, ["alpha", "bravo"]);
        assert_eq!(o.diskless_on_remaining, Some(true));
        assert_eq!(o.fsopts, "-m 0");
        for (size, kib) in [
            ("1G", 1 << 20),
            ("10GiB", 10 << 20),
            ("512", 512 * 1024),
            ("1.5G", 1536 * 1024),
        ] {
            assert_eq!(
                apply(&VolumeOpts::default(), &given(&[("size", size)]))
                    .unwrap()
                    .size_kib,
                kib,
                "{size}"
            );
        }
        assert_eq!(
            apply(&VolumeOpts::default(), &BTreeMap::new())
                .unwrap()
                .size_kib,
            DEFAULT_SIZE_KIB
        );
    }

    #[test]
    fn bad_options_are_explained() {
        let bad = |k: &str, v: &str| {
            apply(&VolumeOpts::default(), &given(&[(k, v)]))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("size", "lots").contains("invalid size 'lots'"));
        assert!(bad("size", "0").contains("invalid size '0'"));
        assert!(bad("fs", "btrfs").contains("use one of: ext4, xfs"));
        assert!(bad("replicas", "0").contains("from 1 to 16"));
        assert!(bad("replicas", "two").contains("from 1 to 16"));
        assert!(bad("sise", "1G").contains("unknown option 'sise'"));
        assert!(bad("disklessonremaining", "maybe").contains("true or false"));
        assert!(bad("donotplacewithregex", "a(b").contains("invalid donotplacewithregex 'a(b'"));
        assert!(bad("donotplacewithregex", "a(b").contains("unclosed group"));
    }
}
