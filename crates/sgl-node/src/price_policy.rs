//! The operator's price policy for the grid's order book (`docs/protocol.md` §17):
//! `price-policy.toml` in the node's config directory says, per job class, the price per hour
//! this node bids (in USD, at most six decimals, read exactly) and the durations it takes, and
//! which resources it offers. The agent bids on every open order it can take at the policy's
//! price ([`PricePolicy::quote`]), never above the order's maximum.
//!
//! ```toml
//! [resources]          # what this node offers (default: what `sgl detect` finds)
//! cpu_cores = 4
//! memory_mb = 8192
//! gpus = 0
//!
//! [classes.wasm]
//! usd_per_hour = 0.12
//! min_duration_secs = 60        # optional
//! max_duration_secs = 86400     # optional
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sgl_protocol::api::market::{MarketOrder, Resources};
use sgl_protocol::compute::JobClass;

use crate::micros::{format_micros, parse_micros};

#[cfg(test)]
mod tests;

/// The policy's file name in the node's config directory.
pub const POLICY_FILE: &str = "price-policy.toml";

/// The policy file of the node whose config directory is `config_dir`.
pub fn policy_path(config_dir: &Path) -> PathBuf {
    config_dir.join(POLICY_FILE)
}

/// A policy that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML of the policy's shape.
    #[error("the price policy is not valid: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("the price policy is not valid: {0}")]
    Invalid(String),
}

/// What one class is bid at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPrice {
    /// The price per hour, micro-USD.
    pub price_per_hour_micros: i64,
    /// The shortest lease taken, seconds.
    pub min_duration_secs: Option<u64>,
    /// The longest lease taken, seconds.
    pub max_duration_secs: Option<u64>,
}

/// The operator's price policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricePolicy {
    /// What the node offers; `None`: what the machine has.
    pub resources: Option<Resources>,
    /// The classes it bids on and their prices; a class not listed is never bid on.
    pub classes: BTreeMap<JobClass, ClassPrice>,
}

/// Why the agent does not bid on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    /// The policy prices no such class.
    #[error("the policy has no price for class {0}")]
    NoPrice(JobClass),
    /// Shorter than the class's minimum.
    #[error("{duration} s is shorter than the policy's minimum of {min} s")]
    TooShort {
        /// The order's duration.
        duration: u64,
        /// The minimum.
        min: u64,
    },
    /// Longer than the class's maximum.
    #[error("{duration} s is longer than the policy's maximum of {max} s")]
    TooLong {
        /// The order's duration.
        duration: u64,
        /// The maximum.
        max: u64,
    },
    /// More than the node offers.
    #[error("the order needs more than the policy's resources")]
    Resources,
    /// The policy's price is above the order's maximum.
    #[error("the policy's price {price} is above the order's maximum {max} (micro-USD per hour)")]
    AboveMaximum {
        /// The policy's price.
        price: i64,
        /// The order's maximum.
        max: i64,
    },
    /// The node's standing bid is the policy's price already.
    #[error("already bid {0} micro-USD per hour")]
    AlreadyBid(i64),
}

impl PricePolicy {
    /// The price this node bids on `order` with `offered` resources, or why it does not.
    pub fn quote(&self, order: &MarketOrder, offered: &Resources) -> Result<i64, Skip> {
        let class = self.classes.get(&order.class).ok_or(Skip::NoPrice(order.class))?;
        let duration = order.duration_secs;
        if let Some(min) = class.min_duration_secs.filter(|min| duration < *min) {
            return Err(Skip::TooShort { duration, min });
        }
        if let Some(max) = class.max_duration_secs.filter(|max| duration > *max) {
            return Err(Skip::TooLong { duration, max });
        }
        if !order.resources.fit_within(self.resources.as_ref().unwrap_or(offered)) {
            return Err(Skip::Resources);
        }
        let price = class.price_per_hour_micros;
        if price > order.max_price_per_hour_micros {
            return Err(Skip::AboveMaximum { price, max: order.max_price_per_hour_micros });
        }
        if order.own_bid_micros == Some(price) {
            return Err(Skip::AlreadyBid(price));
        }
        Ok(price)
    }

    /// Parses a policy file's text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|error| PolicyError::Parse(error.message().to_owned()))?;
        let mut classes = BTreeMap::new();
        for (name, entry) in file.classes {
            let class: JobClass = name.parse().map_err(|error| PolicyError::Invalid(format!("{error}")))?;
            classes.insert(class, entry.price(&name)?);
        }
        if let Some(resources) = &file.resources
            && (resources.cpu_cores == 0 || resources.memory_mb == 0)
        {
            return Err(PolicyError::Invalid("resources need at least 1 CPU core and 1 MiB of memory".to_owned()));
        }
        Ok(Self { resources: file.resources, classes })
    }

    /// The policy as the TOML it is saved as.
    pub fn to_toml(&self) -> String {
        let file = PolicyFile {
            resources: self.resources,
            classes: self
                .classes
                .iter()
                .map(|(class, price)| (class.as_str().to_owned(), ClassFile::of(price)))
                .collect(),
        };
        let body = toml::to_string(&file).unwrap_or_default();
        format!("# The price policy of this node for the grid's order book (`sgl price policy --help`).\n{body}")
    }

    /// Reads the policy of the node in `config_dir`; `Ok(None)` when it has none.
    pub fn load(config_dir: &Path) -> Result<Option<Self>, PolicyError> {
        let path = policy_path(config_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PolicyError::Io { path, source }),
        }
    }

    /// Writes the policy of the node in `config_dir`, whole or not at all (a temporary file
    /// renamed over it).
    pub fn save(&self, config_dir: &Path) -> Result<PathBuf, PolicyError> {
        let path = policy_path(config_dir);
        let io = |source| PolicyError::Io { path: path.clone(), source };
        let temporary = tempfile::NamedTempFile::new_in(config_dir).map_err(io)?;
        std::fs::write(temporary.path(), self.to_toml()).map_err(io)?;
        temporary.persist(&path).map_err(|error| io(error.error))?;
        Ok(path)
    }
}

/// The file's shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    #[serde(default)]
    classes: BTreeMap<String, ClassFile>,
}

/// One class in the file; the price as a TOML number (`0.12`) or string (`"0.12"`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    usd_per_hour: toml::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_duration_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_duration_secs: Option<u64>,
}

impl ClassFile {
    fn of(price: &ClassPrice) -> Self {
        let usd = format_micros(price.price_per_hour_micros);
        // A number when it reads back as exactly these micro-units (it always does for six
        // decimals or fewer), so the file looks as an operator would type it.
        let value = usd.parse::<f64>().map_or(toml::Value::String(usd.clone()), toml::Value::Float);
        Self {
            usd_per_hour: value,
            min_duration_secs: price.min_duration_secs,
            max_duration_secs: price.max_duration_secs,
        }
    }

    fn price(&self, class: &str) -> Result<ClassPrice, PolicyError> {
        // A float's shortest decimal form is the decimal the operator typed (for at most 17
        // significant digits), so parsing that text is exact.
        let text = match &self.usd_per_hour {
            toml::Value::Float(usd) => usd.to_string(),
            toml::Value::Integer(usd) => usd.to_string(),
            toml::Value::String(usd) => usd.clone(),
            _ => return Err(PolicyError::Invalid(format!("classes.{class}.usd_per_hour must be a number"))),
        };
        let micros = parse_micros(&text)
            .map_err(|error| PolicyError::Invalid(format!("classes.{class}.usd_per_hour: {error}")))?;
        if let (Some(min), Some(max)) = (self.min_duration_secs, self.max_duration_secs)
            && min > max
        {
            return Err(PolicyError::Invalid(format!("classes.{class}: min_duration_secs is above max_duration_secs")));
        }
        Ok(ClassPrice {
            price_per_hour_micros: micros,
            min_duration_secs: self.min_duration_secs,
            max_duration_secs: self.max_duration_secs,
        })
    }
}
