//! Graph export: the image graph of a run's flavors, read from their rendered Dockerfiles, as
//! Graphviz or JSON, and the parents or children of one image.
//!
//! Above project and stage: flavors are computed in memory and nothing is written. An image is
//! named `<flavor id>/<image>` (`squid-centos-9-x86_64/daemon`); a bare image name stands for that
//! image in every flavor of the run; an external base is named by its reference as written in
//! `FROM` (or `COPY --from=`). The output is the same bytes for the same input.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use crate::app::project::Project;
use crate::commands::args::{GraphOutput, GraphQuery};
use crate::domain::dockerfile::{self, DOCKERFILE};
use crate::domain::suggest;
use crate::error::EXIT_SUCCESS;
use crate::stage::model::StagedFlavor;

/// One image of the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// `<flavor id>/<image>`.
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) tag: String,
    /// Images of the same flavor it is built from, as node names.
    pub(crate) parents: Vec<String>,
    /// Images from outside the run it is built from (`FROM`, `COPY --from=`), as written.
    pub(crate) external: Vec<String>,
}

/// The images of one flavor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlavorGraph {
    pub(crate) id: String,
    pub(crate) flavor: String,
    pub(crate) images: Vec<Node>,
}

/// The image graph of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageGraph {
    pub(crate) flavors: Vec<FlavorGraph>,
}

/// `<flavor id>/<image>`: how the graph names an image.
pub(crate) fn node_name(id: &str, image: &str) -> String {
    format!("{id}/{image}")
}

impl ImageGraph {
    /// The graph of staged flavors, in their order; images in configuration order.
    pub(crate) fn new(flavors: &[StagedFlavor]) -> ImageGraph {
        let flavors = flavors
            .iter()
            .map(|staged| {
                let id = staged.prepared.id();
                let tags: BTreeSet<&str> = staged.images.iter().map(|i| i.tag.as_str()).collect();
                let images = staged
                    .images
                    .iter()
                    .map(|image| {
                        let mut external = Vec::new();
                        if let Some(file) = image.files.get(DOCKERFILE) {
                            let refs = dockerfile::references(
                                &String::from_utf8_lossy(&file.bytes),
                                staged.prepared.vars.build_args.get(&image.name),
                            );
                            for (reference, _) in refs.images {
                                if !tags.contains(reference.as_str())
                                    && !external.contains(&reference)
                                {
                                    external.push(reference);
                                }
                            }
                        }
                        Node {
                            name: node_name(&id, &image.name),
                            image: image.name.clone(),
                            tag: image.tag.clone(),
                            parents: image
                                .parents
                                .iter()
                                .map(|parent| node_name(&id, parent))
                                .collect(),
                            external,
                        }
                    })
                    .collect();
                FlavorGraph {
                    id,
                    flavor: staged.prepared.flavor.tuple(),
                    images,
                }
            })
            .collect();
        ImageGraph { flavors }
    }

    fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.flavors.iter().flat_map(|flavor| &flavor.images)
    }

    /// Every external image, sorted.
    pub(crate) fn external(&self) -> BTreeSet<&str> {
        self.nodes()
            .flat_map(|node| node.external.iter().map(String::as_str))
            .collect()
    }

    /// Graphviz: one cluster per flavor, external images outside the clusters, an edge from
    /// each parent to its child.
    pub(crate) fn dot(&self) -> String {
        let mut out = String::from("digraph \"matriochka\" {\n  node [shape=\"box\"];\n");
        for (index, flavor) in self.flavors.iter().enumerate() {
            let _ = writeln!(out, "  subgraph \"cluster_{index}\" {{");
            let _ = writeln!(out, "    label={};", dot_quote(&flavor.id));
            for node in &flavor.images {
                let _ = writeln!(
                    out,
                    "    {} [label={}];",
                    dot_quote(&node.name),
                    dot_label(&[&node.image, &node.tag])
                );
            }
            out.push_str("  }\n");
        }
        for external in self.external() {
            let _ = writeln!(
                out,
                "  {} [shape=\"ellipse\", style=\"dashed\"];",
                dot_quote(external)
            );
        }
        for node in self.nodes() {
            for parent in node.external.iter().chain(&node.parents) {
                let _ = writeln!(out, "  {} -> {};", dot_quote(parent), dot_quote(&node.name));
            }
        }
        out.push_str("}\n");
        out
    }

    /// JSON: `{"external": [...], "flavors": [{"id", "flavor", "images": [{"name", "image",
    /// "tag", "parents", "external"}]}]}`.
    pub(crate) fn json(&self) -> String {
        let flavors: Vec<serde_json::Value> = self
            .flavors
            .iter()
            .map(|flavor| {
                let images: Vec<serde_json::Value> = flavor
                    .images
                    .iter()
                    .map(|node| {
                        serde_json::json!({
                            "name": node.name,
                            "image": node.image,
                            "tag": node.tag,
                            "parents": node.parents,
                            "external": node.external,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "id": flavor.id,
                    "flavor": flavor.flavor,
                    "images": images,
                })
            })
            .collect();
        let value = serde_json::json!({
            "external": self.external(),
            "flavors": flavors,
        });
        let mut text = serde_json::to_string_pretty(&value).expect("JSON of strings");
        text.push('\n');
        text
    }

    /// The nodes `selector` names: `<flavor id>/<image>`, or an image name in every flavor.
    fn select(&self, selector: &str) -> Vec<&Node> {
        self.nodes()
            .filter(|node| node.name == selector || node.image == selector)
            .collect()
    }

    fn unknown(&self, selector: &str) -> anyhow::Error {
        let images: BTreeSet<&str> = self.nodes().map(|node| node.image.as_str()).collect();
        let candidates = self
            .nodes()
            .map(|node| node.name.as_str())
            .chain(images.iter().copied())
            .chain(self.external());
        match suggest::closest(selector, candidates) {
            Some(near) => anyhow::anyhow!("unknown image `{selector}`: did you mean `{near}`?"),
            None => anyhow::anyhow!(
                "unknown image `{selector}`: name an image (`{}`) or `<flavor id>/<image>`",
                itertools::join(&images, "`, `")
            ),
        }
    }

    /// The direct parents of the images `selector` names: images of the flavor as node names,
    /// then external images as written; each once, in order.
    pub(crate) fn parents(&self, selector: &str) -> Result<Vec<String>> {
        let nodes = self.select(selector);
        if nodes.is_empty() {
            return Err(self.unknown(selector));
        }
        let mut out: Vec<String> = Vec::new();
        for node in nodes {
            for parent in node.parents.iter().chain(&node.external) {
                if !out.contains(parent) {
                    out.push(parent.clone());
                }
            }
        }
        Ok(out)
    }

    /// The images built directly from those `selector` names (or from the external image it
    /// names), as node names, in graph order.
    pub(crate) fn children(&self, selector: &str) -> Result<Vec<String>> {
        let selected: BTreeSet<&str> = self
            .select(selector)
            .iter()
            .map(|node| node.name.as_str())
            .collect();
        if selected.is_empty() && !self.external().contains(selector) {
            return Err(self.unknown(selector));
        }
        Ok(self
            .nodes()
            .filter(|node| {
                node.parents
                    .iter()
                    .any(|parent| selected.contains(parent.as_str()))
                    || node.external.iter().any(|external| external == selector)
            })
            .map(|node| node.name.clone())
            .collect())
    }
}

/// A DOT string: quoted, `"` and `\` escaped, line breaks folded.
fn dot_quote(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ");
    format!("\"{escaped}\"")
}

/// A DOT label of several lines.
fn dot_label(lines: &[&str]) -> String {
    let quoted: Vec<String> = lines
        .iter()
        .map(|line| {
            let q = dot_quote(line);
            q[1..q.len() - 1].to_string()
        })
        .collect();
    format!("\"{}\"", quoted.join("\\n"))
}

/// `matriochka graph`.
pub(crate) fn command(
    project: &Project,
    args: &[String],
    output: GraphOutput,
    query: Option<&GraphQuery>,
    out: &mut dyn Write,
) -> Result<u8> {
    let graph = ImageGraph::new(&crate::app::staging::compute_flavors(project, args)?);
    let answer = match query {
        None => {
            let text = match output {
                GraphOutput::Dot => graph.dot(),
                GraphOutput::Json => graph.json(),
            };
            out.write_all(text.as_bytes())?;
            return Ok(EXIT_SUCCESS);
        }
        Some(GraphQuery::Parents(selector)) => graph.parents(selector)?,
        Some(GraphQuery::Children(selector)) => graph.children(selector)?,
    };
    match output {
        GraphOutput::Json => {
            serde_json::to_writer_pretty(&mut *out, &answer)?;
            writeln!(out)?;
        }
        GraphOutput::Dot => {
            for line in answer {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, parents: &[&str], external: &[&str]) -> Node {
        let image = name.rsplit('/').next().unwrap().to_string();
        Node {
            name: name.into(),
            tag: format!("ceph/{image}:t"),
            image,
            parents: parents.iter().map(|p| p.to_string()).collect(),
            external: external.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn sample() -> ImageGraph {
        let flavor = |id: &str| FlavorGraph {
            id: id.into(),
            flavor: format!("{id},tuple"),
            images: vec![
                node(
                    &format!("{id}/core"),
                    &[],
                    &["quay.io/centos/centos:stream9"],
                ),
                node(&format!("{id}/app"), &[&format!("{id}/core")], &[]),
            ],
        };
        ImageGraph {
            flavors: vec![flavor("a"), flavor("b")],
        }
    }

    #[test]
    fn parents_and_children_by_node_name_image_name_and_external_reference() {
        let graph = sample();
        assert_eq!(graph.parents("a/app").unwrap(), ["a/core"]);
        assert_eq!(graph.parents("app").unwrap(), ["a/core", "b/core"]);
        assert_eq!(
            graph.parents("core").unwrap(),
            ["quay.io/centos/centos:stream9"]
        );
        assert_eq!(graph.children("b/core").unwrap(), ["b/app"]);
        assert_eq!(graph.children("core").unwrap(), ["a/app", "b/app"]);
        assert_eq!(
            graph.children("quay.io/centos/centos:stream9").unwrap(),
            ["a/core", "b/core"]
        );
        assert!(graph.children("app").unwrap().is_empty());
    }

    #[test]
    fn unknown_images_are_one_line_errors() {
        let graph = sample();
        assert_eq!(
            graph.parents("aap").unwrap_err().to_string(),
            "unknown image `aap`: did you mean `app`?"
        );
        assert_eq!(
            graph.children("daemon-base").unwrap_err().to_string(),
            "unknown image `daemon-base`: name an image (`app`, `core`) or `<flavor id>/<image>`"
        );
    }

    #[test]
    fn dot_strings_are_escaped() {
        assert_eq!(dot_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(dot_label(&["core", "x\"y"]), r#""core\nx\"y""#);
    }
}
