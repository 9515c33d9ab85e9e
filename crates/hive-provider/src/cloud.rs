//! What the IaaS providers (`aws`, `gcp`, `azure`) share: [`Cloud`], the
//! operations a cloud's API carries out, from which each gets its
//! [`Provider`] implementation, and the reading of a stage's settings
//! every one of them starts with.

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::de::DeserializeOwned;

use crate::error::{ProviderError, Result};
use crate::provider::{Provider, ProviderReport, ServerChange};
use crate::stage::{Endpoint, ServerRole, ServerSpec, StageSpec, SubnetSpec};

/// A provider that builds a stage through a cloud's API. Every type that
/// implements it is a [`Provider`]: the flow around the API calls
/// (validating the settings, connecting, reading the stage's public key,
/// check mode, the endpoints on port 22 as the admin user) is the same for
/// every cloud.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// The provider id used in the inventory (`aws`, `gcp`, `azure`).
    const NAME: &'static str;

    /// A connection to the cloud's API for one stage, with what the stage
    /// asks for.
    type Client: Send + Sync;

    /// The provider's error.
    type Error: Into<ProviderError> + Send;

    /// Check the stage's settings, refusing what the real run would fail
    /// on; no API call.
    fn check(stage: &StageSpec) -> Result<(), Self::Error>;

    /// Read the stage's settings and connect to the API.
    async fn connect(stage: &StageSpec) -> Result<Self::Client, Self::Error>;

    /// Build the stage (`check`: only say what would change), giving the
    /// servers the admin's `public_key` when the stage has one.
    async fn build(
        client: &Self::Client,
        check: bool,
        public_key: Option<&str>,
    ) -> Result<ProviderReport, Self::Error>;

    /// Stop the stage's servers, keeping their disks.
    async fn halt(client: &Self::Client) -> Result<Vec<(String, ServerChange)>, Self::Error>;

    /// Remove the stage's servers and everything created for them.
    async fn destroy(client: &Self::Client) -> Result<ProviderReport, Self::Error>;

    /// Each server's name, role and public address, in stage order; an
    /// error names a server that has none yet.
    async fn addresses(
        client: &Self::Client,
    ) -> Result<Vec<(String, ServerRole, String)>, Self::Error>;

    /// The inventory variables the provider reads.
    fn variables() -> &'static [&'static str];
}

/// Connect, read the admin's public key and build (or, with `check`, plan)
/// the stage.
async fn build_or_plan<C: Cloud>(stage: &StageSpec, check: bool) -> Result<ProviderReport> {
    let client = C::connect(stage).await.map_err(Into::into)?;
    let public_key = std::fs::read_to_string(stage.public_key_path()).ok();
    C::build(&client, check, public_key.as_deref())
        .await
        .map_err(Into::into)
}

#[async_trait]
impl<C: Cloud> Provider for C {
    fn name(&self) -> &str {
        C::NAME
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        C::check(stage).map_err(Into::into)?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        build_or_plan::<C>(stage, false).await
    }

    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        Ok(Some(build_or_plan::<C>(stage, true).await?))
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let client = C::connect(stage).await.map_err(Into::into)?;
        Ok(ProviderReport {
            servers: C::halt(&client).await.map_err(Into::into)?,
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let client = C::connect(stage).await.map_err(Into::into)?;
        C::destroy(&client).await.map_err(Into::into)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let client = C::connect(stage).await.map_err(Into::into)?;
        let addresses = C::addresses(&client).await.map_err(Into::into)?;
        Ok(addresses
            .into_iter()
            .map(|(name, role, address)| Endpoint {
                name,
                role,
                address,
                port: 22,
                user: stage.admin.user.clone(),
                key: stage.private_key_path(),
            })
            .collect())
    }

    fn variables(&self) -> &'static [&'static str] {
        C::variables()
    }
}

/// A cloud provider's stage attributes (`accepted`: the keys it takes),
/// after the checks every provider makes ([`StageSpec::check_common`]).
pub fn cloud_attributes<T: DeserializeOwned>(stage: &StageSpec, accepted: &[&str]) -> Result<T> {
    let attributes = stage.provider_attributes(accepted)?;
    stage.check_common()?;
    Ok(attributes)
}

/// The stage's `region` attribute, or an error saying the provider needs
/// one (`what`: how the cloud calls it), with an `example`.
pub fn cloud_region(
    stage: &StageSpec,
    region: Option<&String>,
    what: &str,
    example: &str,
) -> Result<String> {
    region.filter(|r| !r.is_empty()).cloned().ok_or_else(|| {
        stage.invalid(
            "region",
            format!(
                "the {} provider needs a {what}, e.g. `region: {example}`",
                stage.provider
            ),
        )
    })
}

/// Declares a cloud provider's stage attributes (`hive.yml`): a
/// `deny_unknown_fields` struct holding the settings every cloud takes,
/// `region`, `instance_type`, `repository_instance_type`, `az_suffix_list`,
/// `ip_address_list`, `kernel_version` and `drbd_download_url`, around the
/// provider's own fields (each `#[serde(default)]`), and its `ACCEPTED`:
/// every key the struct takes, in order, for error messages. The caller
/// gives the derives, `Deserialize` among them.
///
/// ```
/// use serde::Deserialize;
///
/// hive_provider::cloud_attributes! {
///     /// A toy cloud's attributes.
///     #[derive(Debug, Default, Deserialize)]
///     pub struct ToyAttributes {
///         /// `image_name`: the boot image.
///         pub image_name: Option<String>,
///     }
/// }
///
/// let a: ToyAttributes =
///     serde_json::from_str(r#"{"region": "r1", "image_name": "i"}"#).unwrap();
/// assert_eq!((a.region.as_deref(), a.image_name.as_deref()), (Some("r1"), Some("i")));
/// assert!(serde_json::from_str::<ToyAttributes>(r#"{"imagename": "i"}"#).is_err());
/// assert_eq!(ToyAttributes::ACCEPTED[3], "image_name");
/// ```
#[macro_export]
macro_rules! cloud_attributes {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `region`: where the stage is built.
            #[serde(default)]
            pub region: Option<String>,
            /// `instance_type`: the machine type of the hives.
            #[serde(default)]
            pub instance_type: Option<String>,
            /// `repository_instance_type`: the repository server's machine
            /// type.
            #[serde(default)]
            pub repository_instance_type: Option<String>,
            $(
                $(#[$fmeta])*
                #[serde(default)]
                pub $field: $ty,
            )*
            /// `az_suffix_list`: used by the inventory for servers' default
            /// zones.
            #[serde(default)]
            pub az_suffix_list: Option<Vec<String>>,
            /// `ip_address_list`: already mapped into the servers' addresses.
            #[serde(default)]
            pub ip_address_list: Option<Vec<::std::net::Ipv4Addr>>,
            /// `kernel_version`: read by setup-hosts, not by the provider.
            #[serde(default)]
            pub kernel_version: Option<$crate::serde_json::Value>,
            /// `drbd_download_url`: read by setup-hosts, not by the provider.
            #[serde(default)]
            pub drbd_download_url: Option<$crate::serde_json::Value>,
        }

        impl $name {
            /// The stage keys the provider accepts.
            pub const ACCEPTED: &'static [&'static str] = &[
                "region",
                "instance_type",
                "repository_instance_type",
                $(stringify!($field),)*
                "az_suffix_list",
                "ip_address_list",
                "kernel_version",
                "drbd_download_url",
            ];
        }
    };
}

/// The conversions between a cloud provider's error enum and
/// [`ProviderError`](crate::ProviderError), for an enum with a
/// `Settings(Box<ProviderError>)` variant (`#[error(transparent)]`) that
/// holds what the stage's settings were refused with: a `ProviderError`
/// becomes that variant, and back; any other error becomes
/// [`ProviderError::Cloud`](crate::ProviderError::Cloud) naming
/// `$provider`.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// enum ToyError {
///     #[error(transparent)]
///     Settings(Box<hive_provider::ProviderError>),
///     #[error("{0}")]
///     Conflict(String),
/// }
/// hive_provider::cloud_error_conversions!(ToyError, "toy");
///
/// let refused = hive_provider::ProviderError::invalid_stage("dev", "region", "missing");
/// let back = hive_provider::ProviderError::from(ToyError::from(refused));
/// assert_eq!(back.to_string(), "stage dev: attribute `region`: missing");
/// let cloud = hive_provider::ProviderError::from(ToyError::Conflict("taken".into()));
/// assert_eq!(cloud.to_string(), "toy: taken");
/// ```
#[macro_export]
macro_rules! cloud_error_conversions {
    ($error:ident, $provider:literal) => {
        impl From<$crate::ProviderError> for $error {
            fn from(e: $crate::ProviderError) -> Self {
                $error::Settings(Box::new(e))
            }
        }

        impl From<$error> for $crate::ProviderError {
            fn from(e: $error) -> Self {
                match e {
                    $error::Settings(inner) => *inner,
                    other => $crate::ProviderError::cloud($provider, other),
                }
            }
        }
    };
}

/// The stage's subnets, refusing a stage without one (a cloud network
/// needs at least one subnet).
pub fn cloud_subnets(stage: &StageSpec) -> Result<&[SubnetSpec]> {
    if stage.subnets.is_empty() {
        return Err(stage.invalid("subnets", "the stage has no subnet"));
    }
    Ok(&stage.subnets)
}

/// Check the stage's subnet number `index`: inside the stage's cidr and,
/// with `disjoint`, overlapping none of the subnets before it.
pub fn check_subnet(stage: &StageSpec, index: usize, disjoint: bool) -> Result<()> {
    let subnet = &stage.subnets[index];
    let invalid = |message: String| stage.invalid("subnets", message);
    if !stage.cidr.contains(&subnet.cidr) {
        return Err(invalid(format!(
            "subnet {} ({}) is not inside the stage's cidr {}",
            subnet.name, subnet.cidr, stage.cidr
        )));
    }
    let overlapping = |o: &&SubnetSpec| {
        o.cidr.contains(&subnet.cidr.network()) || subnet.cidr.contains(&o.cidr.network())
    };
    let earlier = if disjoint {
        &stage.subnets[..index]
    } else {
        &[]
    };
    if let Some(other) = earlier.iter().find(overlapping) {
        return Err(invalid(format!(
            "subnets {} ({}) and {} ({}) overlap",
            other.name, other.cidr, subnet.name, subnet.cidr
        )));
    }
    Ok(())
}

/// The subnet of `server` among a cloud's subnets (`name_cidr` gives the
/// name and network of each): the one it names, or the only one when it
/// names none; refused when it has none or its address is outside it.
pub fn server_subnet<'a, S>(
    stage: &StageSpec,
    server: &ServerSpec,
    subnets: &'a [S],
    name_cidr: impl Fn(&S) -> (&str, Ipv4Net),
) -> Result<&'a S> {
    let invalid = |message: String| stage.invalid("subnets", message);
    let subnet = subnets
        .iter()
        .find(|s| Some(name_cidr(s).0) == server.subnet.as_deref())
        .or(if subnets.len() == 1 {
            subnets.first()
        } else {
            None
        })
        .ok_or_else(|| {
            invalid(format!(
                "server {} is in subnet {}, which the stage does not list",
                server.name,
                server.subnet.as_deref().unwrap_or("(none)")
            ))
        })?;
    let (name, cidr) = name_cidr(subnet);
    if !cidr.contains(&server.private_ip) {
        return Err(invalid(format!(
            "server {} has address {} outside its subnet {name} ({cidr})",
            server.name, server.private_ip
        )));
    }
    Ok(subnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> StageSpec {
        let mut s = StageSpec::new(
            "pdns",
            "staging",
            "toy",
            "192.168.0.0/24".parse().unwrap(),
            "/tmp/ctx",
        );
        for (name, cidr) in [("a", "192.168.0.0/26"), ("b", "192.168.0.64/26")] {
            s.subnets.push(SubnetSpec {
                name: name.into(),
                cidr: cidr.parse().unwrap(),
                zone: None,
            });
        }
        let mut server =
            ServerSpec::new("s-hive0", ServerRole::Hive, "192.168.0.70".parse().unwrap());
        server.subnet = Some("b".into());
        s.servers.push(server);
        s
    }

    #[test]
    fn subnets_are_checked_and_found_with_the_message_of_every_cloud() {
        let mut st = stage();
        assert_eq!(cloud_subnets(&st).unwrap().len(), 2);
        check_subnet(&st, 1, true).unwrap();
        let server = st.servers[0].clone();
        let names: Vec<(String, Ipv4Net)> = st
            .subnets
            .iter()
            .map(|s| (s.name.clone(), s.cidr))
            .collect();
        let found = server_subnet(&st, &server, &names, |s| (&s.0, s.1)).unwrap();
        assert_eq!(found.0, "b");

        let mut outside = server.clone();
        outside.private_ip = "192.168.0.5".parse().unwrap();
        let e = server_subnet(&st, &outside, &names, |s| (&s.0, s.1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stage staging: attribute `subnets`: server s-hive0 has address 192.168.0.5 outside its subnet b (192.168.0.64/26)"
        );
        let mut unknown = server.clone();
        unknown.subnet = Some("z".into());
        let e = server_subnet(&st, &unknown, &names, |s| (&s.0, s.1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("server s-hive0 is in subnet z, which the stage does not list"),
            "{e}"
        );

        st.subnets[1].cidr = "192.168.0.0/25".parse().unwrap();
        let e = check_subnet(&st, 1, true).unwrap_err().to_string();
        assert!(
            e.contains("subnets a (192.168.0.0/26) and b (192.168.0.0/25) overlap"),
            "{e}"
        );
        check_subnet(&st, 1, false).unwrap();
        st.subnets[1].cidr = "10.0.0.0/24".parse().unwrap();
        let e = check_subnet(&st, 1, false).unwrap_err().to_string();
        assert!(
            e.contains("subnet b (10.0.0.0/24) is not inside the stage's cidr 192.168.0.0/24"),
            "{e}"
        );
        st.subnets.clear();
        let e = cloud_subnets(&st).unwrap_err().to_string();
        assert_eq!(
            e,
            "stage staging: attribute `subnets`: the stage has no subnet"
        );
    }

    #[test]
    fn a_missing_region_names_the_provider_and_an_example() {
        let st = stage();
        let e = cloud_region(&st, None, "location", "westeurope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "stage staging: attribute `region`: the toy provider needs a location, e.g. `region: westeurope`"
        );
        assert_eq!(
            cloud_region(&st, Some(&"x1".to_string()), "region", "x").unwrap(),
            "x1"
        );
        assert!(cloud_region(&st, Some(&String::new()), "region", "x").is_err());
    }
}
