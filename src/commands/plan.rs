//! `matriochka plan`: the images each flavor would build, as lines or JSON; writes nothing.

use std::io::Write;

use anyhow::Result;

use crate::stage::Prepared;

pub(crate) fn plan(prepared: &[Prepared], json: bool, out: &mut dyn Write) -> Result<()> {
    if !json {
        for p in prepared {
            for (image, tag) in &p.vars.image_tags {
                let context = p.vars.staging_dir().join(image);
                writeln!(out, "{} {image} {tag} {}", p.id(), context.display())?;
            }
        }
        return Ok(());
    }
    let items: Vec<serde_json::Value> = prepared
        .iter()
        .map(|p| {
            let images: Vec<serde_json::Value> = p
                .vars
                .image_tags
                .iter()
                .map(|(image, tag)| {
                    let mut item = serde_json::json!({
                        "name": image,
                        "tag": tag,
                        "context": p.vars.staging_dir().join(image).display().to_string(),
                    });
                    if let Some(args) = p.vars.build_args.get(image) {
                        item["build_args"] = serde_json::json!(args);
                    }
                    item
                })
                .collect();
            serde_json::json!({
                "flavor": p.flavor.text,
                "id": p.id(),
                "staging_dir": p.vars.staging_dir().display().to_string(),
                "vars": p.vars.all(),
                "images": images,
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)?;
    Ok(())
}
