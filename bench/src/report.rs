//! The figures a bench run produces: printed as a table, written as JSON for comparison
//! across runs.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// What the figure is compared with, or the target it must meet, in words.
    pub note: String,
}

#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<Figure>,
}

impl Report {
    pub fn add(&mut self, name: &str, value: f64, unit: &str, note: &str) {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            note: note.into(),
        });
    }

    pub fn print(&self) {
        let width = self.figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
        println!(
            "\n{:<width$}  {:>14}  {:<10}  note",
            "figure", "value", "unit"
        );
        println!("{}", "-".repeat(width + 40));
        for f in &self.figures {
            println!(
                "{:<width$}  {:>14}  {:<10}  {}",
                f.name,
                format_value(f.value),
                f.unit,
                f.note
            );
        }
    }

    /// Writes `target/bench/results.json` and returns its path.
    pub fn write_json(&self) -> std::io::Result<PathBuf> {
        let dir = target_dir().join("bench");
        std::fs::create_dir_all(&dir)?;
        let mut map = Map::new();
        for f in &self.figures {
            map.insert(f.name.clone(), json!({"value": f.value, "unit": f.unit}));
        }
        let path = dir.join("results.json");
        let text = serde_json::to_string_pretty(&Value::Object(map))?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(|p| p.join("target"))
                .unwrap_or_else(|| PathBuf::from("target"))
        })
}
