//! Config edit: how an edit of the configuration file reaches the flavors, from the parsed
//! configuration of both sides rather than from its path (`flavors/**` in `modified.always`
//! marked every flavor for any edit, a comment included).

use std::collections::BTreeSet;

use crate::domain::flavor::Flavor;

/// What an edit of the configuration changes: `None` when anything but the `[flavors]` lists
/// differs (or a side does not parse): every flavor, as `modified.always` says. Otherwise the
/// flavors, as written, that are buildable after the edit and were not before; the others stage
/// the same.
pub(crate) fn newly_buildable(before: Option<&str>, after: &str) -> Option<BTreeSet<String>> {
    let parse = |text: &str| text.parse::<toml::Table>().ok();
    let (mut before, mut after) = (parse(before?)?, parse(after)?);
    let (flavors_before, flavors_after) = (before.remove("flavors"), after.remove("flavors"));
    if before != after {
        return None;
    }
    let buildable = |flavors: Option<toml::Value>| -> Option<BTreeSet<String>> {
        let list = match flavors {
            None => Vec::new(),
            Some(table) => match table.get("buildable") {
                None => Vec::new(),
                Some(list) => list
                    .as_array()?
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()?,
            },
        };
        Some(
            Flavor::split_list(&list)
                .into_iter()
                .map(str::to_string)
                .collect(),
        )
    };
    let (before, after) = (buildable(flavors_before)?, buildable(flavors_after)?);
    Some(after.difference(&before).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "[layout]\nimages = [\"core\"]\n\n[flavors]\nbuildable = [\"a,x86_64,c,9,_,c,9\"]\n";

    #[test]
    fn only_the_flavor_lists_changed() {
        let added = BASE.replace("9,_,c,9\"]", "9,_,c,9\", \"b,c,9\"]");
        assert_eq!(
            newly_buildable(Some(BASE), &added),
            Some(BTreeSet::from(["b,c,9".to_string()]))
        );
        let commented = format!("# note\n{BASE}");
        assert_eq!(
            newly_buildable(Some(BASE), &commented),
            Some(BTreeSet::new())
        );
        let removed = BASE.replace("\"a,x86_64,c,9,_,c,9\"", "");
        assert_eq!(newly_buildable(Some(BASE), &removed), Some(BTreeSet::new()));
    }

    #[test]
    fn anything_else_marks_every_flavor() {
        let layout = BASE.replace("\"core\"", "\"core\", \"app\"");
        assert_eq!(newly_buildable(Some(BASE), &layout), None);
        assert_eq!(newly_buildable(None, BASE), None);
        assert_eq!(newly_buildable(Some("not toml ["), BASE), None);
    }
}
