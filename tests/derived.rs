//! Derived variables (`[variables]` of the configuration): used in layer patterns and templates,
//! checked when the configuration is loaded.

use crate::common::{Test, CONFIG};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const FAMILY: &str = "\n[variables]\nPKG_FAMILY = { from = \"DISTRO\", map = { centos = \"rpm\", ubuntu = \"deb\" } }\n";

/// [`CONFIG`] with a `rel/ALL/{PKG_FAMILY}` layer after `rel/ALL`, and `variables`.
fn config(variables: &str) -> String {
    let config = CONFIG.replace("\"rel/ALL\", ", "\"rel/ALL\", \"rel/ALL/{PKG_FAMILY}\", ");
    format!("{config}{variables}")
}

#[test]
fn derived_variable_selects_a_layer_and_fills_templates() {
    let test = Test::new()
        .write("flavors/matriochka.toml", &config(FAMILY))
        .write(
            "templates/rel/ALL/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nRUN __INSTALL__ # __ENV_[PKG_FAMILY]__\n",
        )
        .write("templates/rel/ALL/rpm/core/__INSTALL__", "dnf install")
        .write("templates/rel/ALL/deb/core/__INSTALL__", "apt-get install")
        .write(
            "templates/rel/ALL/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .args(&["stage", SQUID, "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04"])
        .stdout(
            "staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed\n\
             staged staging/squid-ubuntu-22.04-x86_64: 8 written, 0 unchanged, 0 removed\n",
        )
        .stderr("");
    test.run();
    test.expect_file(
        "staging/squid-centos-9-x86_64/core/Dockerfile",
        "FROM quay.io/centos/centos:stream9\nRUN dnf install # rpm\n",
    );
    test.expect_file(
        "staging/squid-ubuntu-22.04-x86_64/core/Dockerfile",
        "FROM ubuntu:22.04\nRUN apt-get install # deb\n",
    );
}

#[test]
fn derived_variable_from_an_unknown_variable() {
    Test::new()
        .write(
            "flavors/matriochka.toml",
            &config(&FAMILY.replace("\"DISTRO\"", "\"DISTRIB\"")),
        )
        .args(&["stage", SQUID])
        .stdout("")
        .stderr(
            "error: failed to load `flavors/matriochka.toml`: line 14: `variables.PKG_FAMILY` derives \
             from unknown variable `DISTRIB`; known: BASEOS_REGISTRY, BASEOS_REPO, BASEOS_TAG, \
             CEPH_POINT_RELEASE, CEPH_VERSION, DISTRO, DISTRO_VERSION, HOST_ARCH\n",
        )
        .status(1)
        .run();
}

#[test]
fn derived_variable_missing_a_buildable_flavors_value() {
    Test::new()
        .write(
            "flavors/matriochka.toml",
            &config(&FAMILY.replace(", ubuntu = \"deb\"", "")),
        )
        .args(&["stage", SQUID])
        .stdout("")
        .stderr(
            "error: failed to load `flavors/matriochka.toml`: line 14: `variables.PKG_FAMILY` has no \
             value for DISTRO `ubuntu` of buildable flavor `squid,x86_64,ubuntu,22.04,_,ubuntu,22.04`: \
             add `ubuntu = \"…\"` to its map\n",
        )
        .status(1)
        .run();
}

#[test]
fn derived_variable_missing_a_requested_flavors_value() {
    Test::new()
        .write("flavors/matriochka.toml", &config(FAMILY))
        .write("templates/rel/ALL/core/Dockerfile", "FROM x\n")
        .args(&["stage", "squid,x86_64,debian,12,_,debian,12"])
        .stdout("")
        .stderr(
            "error: invalid flavor `squid,x86_64,debian,12,_,debian,12`: `variables.PKG_FAMILY` has no value \
             for DISTRO `debian`; known: centos, ubuntu\n",
        )
        .status(2)
        .run();
}
