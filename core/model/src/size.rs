//! Sizes as people write them (`150m`, `2G`, `1371956KiB`, `1.5GB`) and as LINSTOR stores them
//! (KiB). Binary units are the default for single letters, as in the upstream client: `2G` is two
//! gibibytes, `2GB` two billion bytes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSize(pub String);

/// The unit assumed when a size carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultUnit {
    Bytes,
    KiB,
    MiB,
    GiB,
}

impl DefaultUnit {
    fn factor(self) -> u128 {
        match self {
            DefaultUnit::Bytes => 1,
            DefaultUnit::KiB => 1 << 10,
            DefaultUnit::MiB => 1 << 20,
            DefaultUnit::GiB => 1 << 30,
        }
    }
}

/// Units accepted in sizes, lower-cased; the factor is in bytes.
const UNITS: &[(&str, u128)] = &[
    ("b", 1),
    ("s", 512),
    ("k", 1 << 10),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1_000),
    ("m", 1 << 20),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
    ("t", 1 << 40),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
    ("tb", 1_000_000_000_000),
    ("p", 1 << 50),
    ("pi", 1 << 50),
    ("pib", 1 << 50),
    ("pb", 1_000_000_000_000_000),
];

/// The largest size LINSTOR can express: `size_kib` is a signed 64-bit number of KiB.
pub const MAX_SIZE_KIB: u64 = i64::MAX as u64;

const UNIT_HELP: &str = "use a whole or decimal number with an optional unit: B, S (512-byte sectors), K/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB, P/PiB, PB (e.g. 150M, 2G, 1371956KiB)";

/// Parses a size into bytes. Zero, negative, fractional-byte-overflowing and unparsable sizes
/// are refused with a message that says what was wrong.
pub fn parse_size_bytes(input: &str, default_unit: DefaultUnit) -> Result<u128, InvalidSize> {
    let text = input.trim();
    if text.is_empty() {
        return Err(InvalidSize(format!("the size is empty; {UNIT_HELP}")));
    }
    if text.starts_with('-') {
        return Err(InvalidSize(format!(
            "'{input}' is negative; a size must be greater than zero"
        )));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let num_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(num_end);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(InvalidSize(format!(
            "'{input}' is not a size: it does not start with a number; {UNIT_HELP}"
        )));
    }
    let factor = if unit.is_empty() {
        default_unit.factor()
    } else {
        let lower = unit.to_ascii_lowercase();
        match UNITS.iter().find(|(u, _)| *u == lower) {
            Some((_, f)) => *f,
            None => {
                return Err(InvalidSize(format!(
                    "'{input}' has an unknown unit '{unit}'; {UNIT_HELP}"
                )))
            }
        }
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
        return Err(InvalidSize(format!(
            "'{input}' is not a number; {UNIT_HELP}"
        )));
    }
    let too_big = || {
        InvalidSize(format!(
            "'{input}' is too large: the largest size is {MAX_SIZE_KIB} KiB"
        ))
    };
    let whole_val: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let mut bytes = whole_val.checked_mul(factor).ok_or_else(too_big)?;
    if !frac.is_empty() {
        // Up to 18 fractional digits are significant; the product is rounded up to whole bytes.
        let digits = &frac[..frac.len().min(18)];
        let frac_val: u128 = digits.parse().map_err(|_| too_big())?;
        let scale = 10u128.pow(digits.len() as u32);
        let part = (frac_val * factor).div_ceil(scale);
        bytes = bytes.checked_add(part).ok_or_else(too_big)?;
    }
    if bytes == 0 {
        return Err(InvalidSize(format!(
            "'{input}' is zero; a size must be greater than zero"
        )));
    }
    if bytes.div_ceil(1024) > MAX_SIZE_KIB as u128 {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Parses a size and rounds it up to whole KiB, the unit of the REST API.
pub fn parse_size_kib(input: &str, default_unit: DefaultUnit) -> Result<u64, InvalidSize> {
    let bytes = parse_size_bytes(input, default_unit)?;
    Ok(bytes.div_ceil(1024) as u64)
}

/// Checks a size that arrived in KiB over the API.
pub fn check_size_kib(size_kib: i64) -> Result<u64, InvalidSize> {
    if size_kib <= 0 {
        return Err(InvalidSize(format!(
            "size {size_kib} KiB is not allowed; a volume must be larger than zero"
        )));
    }
    Ok(size_kib as u64)
}

/// A size in KiB shown the way the upstream client does: the largest binary unit that keeps the
/// number at least one, with two decimals unless it is a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanKib(pub u64);

impl fmt::Display for HumanKib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        let kib = self.0;
        let mut index = 0;
        let mut magnitude: u64 = 1;
        while index + 1 < UNITS.len() && kib >= magnitude << 10 {
            magnitude <<= 10;
            index += 1;
        }
        if kib.is_multiple_of(magnitude) {
            write!(f, "{} {}", kib / magnitude, UNITS[index])
        } else {
            write!(f, "{:.2} {}", kib as f64 / magnitude as f64, UNITS[index])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kib(s: &str) -> Result<u64, InvalidSize> {
        parse_size_kib(s, DefaultUnit::Bytes)
    }

    #[test]
    fn spellings_people_use() {
        assert_eq!(kib("150m").unwrap(), 150 * 1024);
        assert_eq!(kib("2G").unwrap(), 2 * 1024 * 1024);
        assert_eq!(kib("250M").unwrap(), 250 * 1024);
        assert_eq!(kib("1371956KiB").unwrap(), 1_371_956);
        assert_eq!(kib("40G").unwrap(), 40 * 1024 * 1024);
        assert_eq!(kib("64M").unwrap(), 65536);
        assert_eq!(kib("1 GiB").unwrap(), 1024 * 1024);
        assert_eq!(kib("1Ti").unwrap(), 1 << 30);
        assert_eq!(kib("100MB").unwrap(), 97_657); // 100e6 bytes rounded up to KiB
        assert_eq!(kib("1.5G").unwrap(), 1024 * 1024 * 3 / 2);
        assert_eq!(kib("4096").unwrap(), 4);
        assert_eq!(kib("1").unwrap(), 1); // one byte still needs one KiB
        assert_eq!(kib("8s").unwrap(), 4);
    }

    #[test]
    fn default_unit_applies_without_unit() {
        assert_eq!(parse_size_kib("2", DefaultUnit::GiB).unwrap(), 2 << 20);
        assert_eq!(parse_size_kib("2K", DefaultUnit::GiB).unwrap(), 2);
    }

    #[test]
    fn refuses_bad_sizes() {
        for bad in [
            "0", "0G", "-1G", "-5", "abc", "", "G", "12X", "1.2.3G", "..G",
        ] {
            let err = kib(bad).unwrap_err();
            assert!(!err.0.is_empty(), "{bad}");
        }
        assert!(kib("-1G").unwrap_err().0.contains("negative"));
        assert!(kib("0").unwrap_err().0.contains("zero"));
        assert!(kib("12X").unwrap_err().0.contains("unknown unit"));
    }

    #[test]
    fn refuses_overflow() {
        let err = kib("99999999999999999999999999999999999999999P").unwrap_err();
        assert!(err.0.contains("too large"), "{}", err.0);
        let err = kib("9000000P").unwrap_err();
        assert!(err.0.contains("too large"), "{}", err.0);
        assert!(check_size_kib(0).is_err());
        assert!(check_size_kib(-4).is_err());
        assert_eq!(check_size_kib(4).unwrap(), 4);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(HumanKib(2 * 1024 * 1024).to_string(), "2 GiB");
        assert_eq!(HumanKib(1536 * 1024).to_string(), "1.50 GiB");
        assert_eq!(HumanKib(512).to_string(), "512 KiB");
        assert_eq!(HumanKib(1024).to_string(), "1 MiB");
        assert_eq!(HumanKib(0).to_string(), "0 KiB");
    }
}
