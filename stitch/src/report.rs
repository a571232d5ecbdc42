//! `stitch bench --json FILE` and `--svg FILE`: the measurements as data and as a picture
//! (per program, interpreter, JIT and native times side by side on a log scale, and their
//! geometric means).
//!
//! The files are created before anything is measured, so a path that cannot be written
//! is reported at once rather than after the whole suite has run.

use crate::Failure;
use plotters::prelude::*;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Default)]
pub struct Outputs {
    /// Also write the measurements as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the measurements as an SVG picture in this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// What one program measured, in the units of the JSON file.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Measurement {
    pub program: String,
    pub interp_seconds: f64,
    pub jit_seconds: f64,
    pub native_seconds: f64,
    /// Bytecode instructions and machine-code bytes compiled per second.
    pub compile_insts_per_second: f64,
    pub compile_bytes_per_second: f64,
    /// Machine code per bytecode instruction.
    pub code_bytes_per_inst: f64,
}

/// The whole JSON document.
#[derive(Serialize)]
struct Report<'a> {
    /// Each time is the best of this many runs.
    repetitions: usize,
    programs: &'a [Measurement],
    geomean: Geomeans,
}

/// Geometric means over the programs: of each tier's time, and of the two ratios the
/// table prints (speedup = interpreter / JIT, JIT / native).
#[derive(Serialize)]
struct Geomeans {
    interp_seconds: f64,
    jit_seconds: f64,
    native_seconds: f64,
    speedup: f64,
    jit_over_native: f64,
}

impl Geomeans {
    fn of(measurements: &[Measurement]) -> Geomeans {
        let over = |f: fn(&Measurement) -> f64| {
            crate::bench::geomean(&measurements.iter().map(f).collect::<Vec<_>>())
        };
        Geomeans {
            interp_seconds: over(|m| m.interp_seconds),
            jit_seconds: over(|m| m.jit_seconds),
            native_seconds: over(|m| m.native_seconds),
            speedup: over(|m| m.interp_seconds / m.jit_seconds),
            jit_over_native: over(|m| m.jit_seconds / m.native_seconds),
        }
    }
}

/// The files asked for, created and still empty.
pub struct Sinks {
    json: Option<(PathBuf, File)>,
    svg: Option<(PathBuf, File)>,
}

impl Outputs {
    pub fn open(&self) -> Result<Sinks, Failure> {
        let create = |path: &Option<PathBuf>| {
            path.as_ref()
                .map(|p| {
                    File::create(p)
                        .map(|f| (p.clone(), f))
                        .map_err(|e| cannot_write(p, e))
                })
                .transpose()
        };
        Ok(Sinks {
            json: create(&self.json)?,
            svg: create(&self.svg)?,
        })
    }
}

fn cannot_write(path: &Path, error: impl std::fmt::Display) -> Failure {
    Failure::input(format!("error: cannot write {}: {error}", path.display()))
}

impl Sinks {
    /// Writes the measurements of `repetitions`-run bests to the files asked for.
    pub fn write(self, measurements: &[Measurement], repetitions: usize) -> Result<(), Failure> {
        if let Some((path, mut file)) = self.json {
            let report = Report {
                repetitions,
                programs: measurements,
                geomean: Geomeans::of(measurements),
            };
            let mut text = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::Internal(format!("error: cannot encode JSON: {e}")))?;
            text.push('\n');
            file.write_all(text.as_bytes())
                .map_err(|e| cannot_write(&path, e))?;
        }
        if let Some((path, mut file)) = self.svg {
            let picture = svg(measurements, repetitions)?;
            file.write_all(picture.as_bytes())
                .map_err(|e| cannot_write(&path, e))?;
        }
        Ok(())
    }
}

/// A tier as drawn: name in the legend, colour, its time in a measurement.
type Tier = (&'static str, RGBColor, fn(&Measurement) -> f64);

const TIERS: [Tier; 3] = [
    ("interpreter", RGBColor(0x4c, 0x72, 0xb0), |m| {
        m.interp_seconds
    }),
    ("JIT", RGBColor(0xdd, 0x84, 0x52), |m| m.jit_seconds),
    ("native Rust", RGBColor(0x55, 0xa8, 0x68), |m| {
        m.native_seconds
    }),
];

/// A horizontal bar chart: one group of three bars per program (top to bottom in suite
/// order) and a last group of the geometric means; times in milliseconds on a log axis.
pub fn svg(measurements: &[Measurement], repetitions: usize) -> Result<String, Failure> {
    let geomeans = Geomeans::of(measurements);
    let mut groups: Vec<Measurement> = measurements.to_vec();
    groups.push(Measurement {
        program: "geomean".to_string(),
        interp_seconds: geomeans.interp_seconds,
        jit_seconds: geomeans.jit_seconds,
        native_seconds: geomeans.native_seconds,
        compile_insts_per_second: 0.0,
        compile_bytes_per_second: 0.0,
        code_bytes_per_inst: 0.0,
    });
    let times_ms = groups
        .iter()
        .flat_map(|m| TIERS.iter().map(move |(_, _, time)| time(m) * 1e3));
    let (min, max) = times_ms.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    // Whole decades, so the log axis starts and ends on a labelled power of ten.
    let low = 10f64.powf(min.max(1e-6).log10().floor());
    let high = 10f64.powf(max.max(low * 10.0).log10().ceil());

    let height = 170 + 42 * groups.len() as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, height)).into_drawing_area();
        let draw_error = |e: &dyn std::fmt::Display| {
            Failure::Internal(format!("error: cannot draw the benchmark picture: {e}"))
        };
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let n = groups.len();
        // Group i is centred on y = n - 1 - i, so the first program is at the top.
        let (plot, legend) = root.split_vertically(height - 34);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!(
                    "stitch bench: best of {repetitions} runs (geomean: JIT {:.2}x faster than the interpreter, {:.2}x native time)",
                    geomeans.speedup, geomeans.jit_over_native
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d((low..high).log_scale(), -0.5..n as f64 - 0.5)
            .map_err(|e| draw_error(&e))?;
        let name_at = |y: &f64| {
            let i = n as i64 - 1 - y.round() as i64;
            let close = (y - y.round()).abs() < 1e-6;
            match usize::try_from(i).ok().and_then(|i| groups.get(i)) {
                Some(m) if close => m.program.clone(),
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 16))
            .y_labels(n)
            .y_label_formatter(&name_at)
            .x_desc("time per run, ms (log scale)")
            .x_label_formatter(&|ms| format!("{ms}"))
            .draw()
            .map_err(|e| draw_error(&e))?;
        let bar = 0.26;
        for (t, (_, colour, time)) in TIERS.iter().enumerate() {
            let offset = (1.0 - t as f64) * bar;
            let bars = groups.iter().enumerate().map(|(i, m)| {
                let y = (n - 1 - i) as f64 + offset;
                // A time below the axis (no real run is that fast) draws as no bar.
                let end = (time(m) * 1e3).max(low);
                Rectangle::new(
                    [(low, y - bar / 2.0), (end, y + bar / 2.0)],
                    colour.filled(),
                )
            });
            chart.draw_series(bars).map_err(|e| draw_error(&e))?;
        }
        // A rule between the programs and their geomeans.
        chart
            .draw_series([PathElement::new(vec![(low, 0.5), (high, 0.5)], BLACK)])
            .map_err(|e| draw_error(&e))?;
        // The legend, in a strip of its own under the chart, so it covers no bar.
        for (t, (label, colour, _)) in TIERS.iter().enumerate() {
            let x = 130 + 170 * t as i32;
            legend
                .draw(&Rectangle::new([(x, 8), (x + 14, 22)], colour.filled()))
                .map_err(|e| draw_error(&e))?;
            legend
                .draw(&Text::new(*label, (x + 20, 8), ("sans-serif", 16)))
                .map_err(|e| draw_error(&e))?;
        }
        root.present().map_err(|e| draw_error(&e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two made-up measurements: nothing is timed here.
    fn measurements() -> Vec<Measurement> {
        let row = |program: &str, interp, jit, native| Measurement {
            program: program.to_string(),
            interp_seconds: interp,
            jit_seconds: jit,
            native_seconds: native,
            compile_insts_per_second: 1e6,
            compile_bytes_per_second: 2e7,
            code_bytes_per_inst: 12.5,
        };
        vec![
            row("first_prog", 0.2, 0.01, 0.005),
            row("second_prog", 0.08, 0.04, 0.01),
        ]
    }

    #[test]
    fn json_holds_every_measurement_and_the_geomeans() {
        let dir = std::env::temp_dir().join(format!("stitch-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bench.json");
        let outputs = Outputs {
            json: Some(path.clone()),
            svg: None,
        };
        outputs.open().unwrap().write(&measurements(), 3).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(json["repetitions"], 3);
        let programs = json["programs"].as_array().unwrap();
        assert_eq!(programs.len(), 2);
        assert_eq!(programs[1]["program"], "second_prog");
        assert_eq!(programs[1]["jit_seconds"], 0.04);
        assert_eq!(programs[0]["code_bytes_per_inst"], 12.5);
        // Speedups 20 and 2: geomean sqrt(40); JIT/native 2 and 4: sqrt(8).
        let close = |v: &serde_json::Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
        assert!(close(&json["geomean"]["speedup"], 40f64.sqrt()), "{json}");
        assert!(
            close(&json["geomean"]["jit_over_native"], 8f64.sqrt()),
            "{json}"
        );
        assert!(close(
            &json["geomean"]["native_seconds"],
            (0.005f64 * 0.01).sqrt()
        ));
    }

    #[test]
    fn svg_draws_three_bars_per_program_and_the_geomeans() {
        let picture = svg(&measurements(), 3).unwrap();
        assert!(picture.starts_with("<svg"), "{picture}");
        for text in [
            "first_prog",
            "second_prog",
            "geomean",
            "interpreter",
            "JIT",
            "native Rust",
        ] {
            assert!(
                picture.contains(&format!(">\n{text}\n</text>")),
                "no `{text}` label"
            );
        }
        assert!(picture.contains("6.32x faster than the interpreter, 2.83x native"));
        // Per tier colour: a bar for each of the two programs and the geomean, and the
        // legend's swatch.
        for (_, colour, _) in TIERS {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            assert_eq!(picture.matches(&fill).count(), 4, "{fill}");
        }
    }

    #[test]
    fn an_unwritable_path_is_an_input_error_before_measuring() {
        let outputs = Outputs {
            json: None,
            svg: Some(PathBuf::from("/no/such/directory/bench.svg")),
        };
        match outputs.open() {
            Err(Failure::Input(lines)) => {
                assert!(lines[0].contains("cannot write /no/such/directory/bench.svg"))
            }
            _ => panic!("not an input error"),
        }
    }
}
