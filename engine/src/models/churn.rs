//! The churn model in service: one of three algorithms behind one interface, with the
//! feature schema it was trained on, loaded from a verified registry version.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::forest::Forest;
use super::logistic::{LogisticParams, LogisticRegression};
use super::mlp::Mlp;
use super::{ModelError, Rows, sigmoid};
use crate::features::FeatureSchema;
use crate::labels::Population;
use crate::registry::{Manifest, ModelRegistry};

/// The churn algorithms the trainer can fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Logistic,
    Mlp,
    Forest,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Self::Logistic, Self::Mlp, Self::Forest];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::Mlp => "mlp",
            Self::Forest => "forest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The weights file inside a version directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Logistic | Self::Mlp => "model.safetensors",
            Self::Forest => "forest.json",
        }
    }
}

#[derive(Debug)]
pub enum ChurnModel {
    Logistic(LogisticRegression),
    Mlp(Mlp),
    /// A forest's raw output is the share of trees voting churn: it ranks well but is not
    /// a probability, so it is calibrated (Platt) on rows the trees did not see.
    Forest(Forest, Option<Platt>),
}

/// Platt scaling: `p' = σ(a·logit(p) + b)`, fitted on held-out rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    /// Fits `a` and `b` by (almost unregularised) logistic regression of the labels on
    /// the logits of the raw scores.
    pub fn fit(scores: &[f64], labels: &[bool]) -> Result<Self, ModelError> {
        let x: Vec<f32> = scores.iter().map(|&p| logit(p) as f32).collect();
        let params = LogisticParams {
            c: 1e6,
            ..LogisticParams::default()
        };
        let (m, _) = LogisticRegression::fit(Rows::new(&x, 1)?, labels, &params)?;
        Ok(Self {
            a: f64::from(m.weights[0]),
            b: f64::from(m.bias),
        })
    }

    pub fn apply(&self, p: f64) -> f64 {
        sigmoid(self.a * logit(p) + self.b)
    }
}

const CALIBRATION_FILE: &str = "calibration.json";

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

impl ChurnModel {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Logistic(_) => Algorithm::Logistic,
            Self::Mlp(_) => Algorithm::Mlp,
            Self::Forest(..) => Algorithm::Forest,
        }
    }

    pub fn inputs(&self) -> usize {
        match self {
            Self::Logistic(m) => m.inputs(),
            Self::Mlp(m) => m.inputs(),
            Self::Forest(m, _) => m.inputs(),
        }
    }

    pub fn probability(&self, row: &[f32]) -> f64 {
        match self {
            Self::Logistic(m) => m.probability(row),
            Self::Mlp(m) => m.probability(row),
            Self::Forest(m, c) => {
                let p = m.probability(row);
                c.map_or(p, |c| c.apply(p))
            }
        }
    }

    pub fn probabilities(&self, x: Rows<'_>) -> Result<Vec<f64>, ModelError> {
        match self {
            Self::Logistic(m) => m.probabilities(x),
            Self::Mlp(m) => m.probabilities(x),
            Self::Forest(m, c) => {
                let p = m.probabilities(x)?;
                Ok(match c {
                    Some(c) => p.into_iter().map(|p| c.apply(p)).collect(),
                    None => p,
                })
            }
        }
    }

    /// Each input's contribution to the log-odds of churn. Exact for logistic
    /// regression (`wᵢ·xᵢ`); for the other algorithms, the change in log-odds when the
    /// input is set to the training average (0 after standardizing).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        if let Self::Logistic(m) = self {
            return m.contributions(row);
        }
        let base = logit(self.probability(row));
        let mut probe = row.to_vec();
        (0..row.len())
            .map(|i| {
                if row[i] == 0.0 {
                    return 0.0;
                }
                probe[i] = 0.0;
                let without = logit(self.probability(&probe));
                probe[i] = row[i];
                base - without
            })
            .collect()
    }

    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(self.algorithm().file_name());
        match self {
            Self::Logistic(m) => m.save(&path),
            Self::Mlp(m) => m.save(&path),
            Self::Forest(m, c) => {
                m.save(&path)?;
                if let Some(c) = c {
                    let file = dir.join(CALIBRATION_FILE);
                    let json = serde_json::to_vec_pretty(c).map_err(|e| ModelError::File {
                        path: file.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    std::fs::write(&file, json).map_err(|e| ModelError::File {
                        path: file.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
                Ok(())
            }
        }
    }

    pub fn load(dir: &Path, algorithm: Algorithm, inputs: usize) -> Result<Self, ModelError> {
        let path = dir.join(algorithm.file_name());
        Ok(match algorithm {
            Algorithm::Logistic => Self::Logistic(LogisticRegression::load(&path, inputs)?),
            Algorithm::Mlp => Self::Mlp(Mlp::load(&path, inputs)?),
            Algorithm::Forest => {
                let file = dir.join(CALIBRATION_FILE);
                let calibration = match std::fs::read(&file) {
                    Ok(bytes) => Some(serde_json::from_slice::<Platt>(&bytes).map_err(|e| {
                        ModelError::File {
                            path: file.display().to_string(),
                            reason: e.to_string(),
                        }
                    })?),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(ModelError::File {
                            path: file.display().to_string(),
                            reason: e.to_string(),
                        });
                    }
                };
                Self::Forest(Forest::load(&path, inputs)?, calibration)
            }
        })
    }
}

/// One population's churn model with the feature schema it was trained on.
#[derive(Debug)]
pub struct PopulationChurn {
    /// None for a version from before models were fitted per population: it serves
    /// every customer.
    pub population: Option<Population>,
    pub schema: FeatureSchema,
    pub model: ChurnModel,
}

/// A churn version with everything needed to score a customer: a model per population.
#[derive(Debug)]
pub struct LoadedChurn {
    pub manifest: Manifest,
    pub populations: Vec<PopulationChurn>,
    /// The horizon the models predict over, in microseconds.
    pub horizon: i64,
}

impl LoadedChurn {
    /// The model that scores customers of `population`, if this version has one.
    pub fn for_population(&self, population: Population) -> Option<&PopulationChurn> {
        self.populations
            .iter()
            .find(|p| p.population == Some(population))
            .or_else(|| self.populations.iter().find(|p| p.population.is_none()))
    }
}

/// One population's entry in a churn manifest's `feature_schema`:
/// `{"populations": [{"population", "algorithm", "schema"}, ...]}`; its files are in the
/// version's subdirectory named after the population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PopulationSchema {
    pub population: Population,
    pub algorithm: Algorithm,
    pub schema: FeatureSchema,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PopulationSchemas {
    pub populations: Vec<PopulationSchema>,
}

/// Loads a churn version after verifying its files, refusing a schema or algorithm the
/// engine does not understand.
pub fn load_churn(registry: &dyn ModelRegistry, version: u64) -> Result<LoadedChurn, ModelError> {
    let bad = |reason: String| ModelError::File {
        path: format!("{}/churn/{version}", registry.location()),
        reason,
    };
    let (manifest, dir) = registry
        .verified("churn", version)
        .map_err(|e| bad(e.to_string()))?;
    let horizon = manifest
        .training
        .get("horizon_micros")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| bad("training.horizon_micros missing".into()))?;
    let populations = if manifest.feature_schema.get("populations").is_some() {
        let schemas: PopulationSchemas = serde_json::from_value(manifest.feature_schema.clone())
            .map_err(|e| bad(format!("per-population schemas unreadable: {e}")))?;
        if schemas.populations.is_empty() {
            return Err(bad("the version has no population's model".into()));
        }
        let mut out = Vec::new();
        for p in schemas.populations {
            p.schema.check_compatible().map_err(&bad)?;
            let model = ChurnModel::load(
                &dir.join(p.population.as_str()),
                p.algorithm,
                p.schema.len(),
            )?;
            out.push(PopulationChurn {
                population: Some(p.population),
                schema: p.schema,
                model,
            });
        }
        out
    } else {
        let algorithm = Algorithm::parse(&manifest.algorithm)
            .ok_or_else(|| bad(format!("unknown algorithm {:?}", manifest.algorithm)))?;
        let schema: FeatureSchema = serde_json::from_value(manifest.feature_schema.clone())
            .map_err(|e| bad(format!("feature schema unreadable: {e}")))?;
        schema.check_compatible().map_err(&bad)?;
        let model = ChurnModel::load(&dir, algorithm, schema.len())?;
        vec![PopulationChurn {
            population: None,
            schema,
            model,
        }]
    };
    Ok(LoadedChurn {
        manifest,
        populations,
        horizon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_distortion() {
        // Scores are sigmoid(z / 3): true probability sigmoid(z). Platt should find a ≈ 3.
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut state = 12345u64;
        for i in 0..20_000 {
            let z = (i % 200) as f64 / 25.0 - 4.0;
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            scores.push(sigmoid(z / 3.0));
            labels.push(u < sigmoid(z));
        }
        let p = Platt::fit(&scores, &labels).expect("fit");
        assert!((p.a - 3.0).abs() < 0.2, "{p:?}");
        assert!(p.b.abs() < 0.1, "{p:?}");
        assert!((p.apply(sigmoid(1.0 / 3.0)) - sigmoid(1.0)).abs() < 0.02);
    }
}
