//! Which request traffic a monitoring query covers, and how its endpoints are named.
//!
//! Liftoff records its own API traffic under the service `liftoff`. Mixed into an app's figures
//! it would make a quiet app look busy and a failing one look healthy, so a query without a
//! service covers the app services only; Liftoff's own traffic is there when asked for by name.

use std::collections::BTreeMap;

use super::requests::CellKey;
use super::service::OWN_SERVICE;

/// A monitoring query's scope: one service or every app service, optionally one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    /// One service; `None` is every service except Liftoff's own.
    pub service: Option<&'a str>,
    /// One endpoint: `/route` or `METHOD:/route`.
    pub endpoint: Option<&'a str>,
}

impl<'a> Filter<'a> {
    pub fn new(service: Option<&'a str>, endpoint: Option<&'a str>) -> Self {
        Self {
            service: service.filter(|s| !s.is_empty()),
            endpoint: endpoint.filter(|e| !e.is_empty()),
        }
    }

    /// Every app service, one service by name.
    pub fn service(service: Option<&'a str>) -> Self {
        Self::new(service, None)
    }

    pub fn covers_service(&self, service: &str) -> bool {
        match self.service {
            Some(s) => s == service,
            None => service != OWN_SERVICE,
        }
    }

    pub fn covers_endpoint(&self, method: &str, route: &str) -> bool {
        self.endpoint.is_none_or(|e| {
            e == route
                || e.split_once(':')
                    .is_some_and(|(m, r)| r == route && m.eq_ignore_ascii_case(method))
        })
    }

    /// Whether an endpoint cell (not a totals cell) is in scope.
    pub fn covers(&self, k: &CellKey) -> bool {
        self.covers_service(&k.service) && self.covers_endpoint(&k.method, &k.route)
    }
}

/// The seed's map key of an endpoint, `"METHOD:/route"`.
pub fn endpoint_key(method: &str, route: &str) -> String {
    format!("{method}:{route}")
}

/// Map keys for endpoints of possibly several services: the seed's `"METHOD:/route"`, except
/// where two services share an endpoint, which are then both keyed `"service:METHOD:/route"`
/// rather than merged. An answer about one service always has the seed's keys.
pub fn unique_keys<'k, I>(endpoints: I) -> BTreeMap<(&'k str, &'k str, &'k str), String>
where
    I: IntoIterator<Item = (&'k str, &'k str, &'k str)>,
{
    let all: Vec<(&str, &str, &str)> = endpoints.into_iter().collect();
    let mut services_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (_, method, route) in &all {
        *services_per_key
            .entry(endpoint_key(method, route))
            .or_default() += 1;
    }
    all.into_iter()
        .map(|(service, method, route)| {
            let plain = endpoint_key(method, route);
            let key = if services_per_key.get(&plain).copied().unwrap_or(0) > 1 {
                format!("{service}:{plain}")
            } else {
                plain
            };
            ((service, method, route), key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_service_means_every_app_service_and_not_liftoff() {
        let all = Filter::default();
        assert!(all.covers_service("shop"));
        assert!(!all.covers_service(OWN_SERVICE));
        let own = Filter::service(Some(OWN_SERVICE));
        assert!(own.covers_service(OWN_SERVICE));
        assert!(!own.covers_service("shop"));
        assert_eq!(Filter::new(Some(""), Some("")), Filter::default());
    }

    #[test]
    fn an_endpoint_is_a_route_or_method_and_route() {
        let route = Filter::new(None, Some("/checkout"));
        assert!(route.covers_endpoint("POST", "/checkout"));
        assert!(route.covers_endpoint("GET", "/checkout"));
        let exact = Filter::new(None, Some("post:/checkout"));
        assert!(exact.covers_endpoint("POST", "/checkout"));
        assert!(!exact.covers_endpoint("GET", "/checkout"));
        assert!(!exact.covers_endpoint("POST", "/cart"));
        // Routes may contain colons; they are compared whole.
        assert!(Filter::new(None, Some("GET:/a:b")).covers_endpoint("GET", "/a:b"));
    }

    #[test]
    fn shared_endpoints_are_keyed_by_service_and_others_keep_the_seed_key() {
        let keys = unique_keys([
            ("shop", "GET", "/health"),
            ("api", "GET", "/health"),
            ("shop", "POST", "/checkout"),
        ]);
        assert_eq!(keys[&("shop", "GET", "/health")], "shop:GET:/health");
        assert_eq!(keys[&("api", "GET", "/health")], "api:GET:/health");
        assert_eq!(keys[&("shop", "POST", "/checkout")], "POST:/checkout");
    }
}
