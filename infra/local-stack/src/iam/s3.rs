//! What an S3 REST request asks IAM for: its actions and resources, as S3 authorizes them (the
//! "Actions, resources, and condition keys for Amazon S3" reference). Path-style addressing only
//! (`/<bucket>/<key>`), which is what the functions use with a custom endpoint. Pure: the proxy in
//! `s3_proxy` reads the request and calls this.
//!
//! Some requests need more than one action: a `PUT` with `x-amz-tagging` needs `s3:PutObjectTagging`
//! besides `s3:PutObject`, a copy needs `s3:GetObject` on its source, and a multi-object delete needs
//! `s3:DeleteObject` on every key it names. A request this module cannot place is refused rather than
//! waved through: the stand-in never allows what it cannot judge.

use hyper::header::HeaderMap;
use hyper::Method;

use crate::url::percent_decode;

/// One thing a request must be allowed: action and resource ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub action: &'static str,
    pub resource: String,
}

/// What the request asks for, or why it cannot be judged. `body` is read only for a multi-object
/// delete (`POST /<bucket>?delete`, see [`needs_body`]); pass `None` otherwise.
pub fn accesses(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<Vec<Access>, String> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (percent_decode(bucket), percent_decode(key)),
        None => (percent_decode(path), String::new()),
    };
    let has = |name: &str| subresources(query).any(|s| s == name);
    let one = |action: &'static str, resource: String| Ok(vec![Access { action, resource }]);
    if bucket.is_empty() {
        return match *method {
            Method::GET => one("s3:ListAllMyBuckets", "*".to_owned()),
            _ => Err(format!("{method} / is not an S3 operation")),
        };
    }
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    if key.is_empty() {
        return bucket_operation(method, &has, bucket_arn, body);
    }
    let object = format!("{bucket_arn}/{key}");
    match *method {
        Method::GET | Method::HEAD => one(
            if has("tagging") {
                "s3:GetObjectTagging"
            } else if has("acl") {
                "s3:GetObjectAcl"
            } else if has("uploadId") {
                "s3:ListMultipartUploadParts"
            } else if has("versionId") {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            },
            object,
        ),
        Method::PUT if has("tagging") => one("s3:PutObjectTagging", object),
        Method::PUT if has("acl") => one("s3:PutObjectAcl", object),
        Method::PUT => {
            let mut needed = vec![Access {
                action: "s3:PutObject",
                resource: object.clone(),
            }];
            // Tags, ACLs and copies given as headers are authorized as their own actions.
            if headers.contains_key("x-amz-tagging") {
                needed.push(Access {
                    action: "s3:PutObjectTagging",
                    resource: object.clone(),
                });
            }
            if headers
                .keys()
                .any(|name| name.as_str() == "x-amz-acl" || name.as_str().starts_with("x-amz-grant-"))
            {
                needed.push(Access {
                    action: "s3:PutObjectAcl",
                    resource: object.clone(),
                });
            }
            if let Some(source) = headers.get("x-amz-copy-source") {
                let source = source
                    .to_str()
                    .map_err(|_| "x-amz-copy-source is not text".to_owned())?;
                let source = percent_decode(source.split('?').next().unwrap_or(source));
                needed.push(Access {
                    action: "s3:GetObject",
                    resource: format!("arn:aws:s3:::{}", source.trim_start_matches('/')),
                });
            }
            Ok(needed)
        }
        Method::DELETE => one(
            if has("tagging") {
                "s3:DeleteObjectTagging"
            } else if has("uploadId") {
                "s3:AbortMultipartUpload"
            } else if has("versionId") {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            },
            object,
        ),
        // CreateMultipartUpload and CompleteMultipartUpload are both s3:PutObject.
        Method::POST if has("uploads") || has("uploadId") => one("s3:PutObject", object),
        Method::POST if has("restore") => one("s3:RestoreObject", object),
        Method::POST if has("select") => one("s3:GetObject", object),
        _ => Err(format!(
            "{method} on an object is not an S3 operation this stand-in knows"
        )),
    }
}

/// Whether the request's decision depends on its body: a multi-object delete names its keys there.
pub fn needs_body(method: &Method, path: &str, query: &str) -> bool {
    *method == Method::POST && !path.trim_start_matches('/').contains('/') && subresources(query).any(|s| s == "delete")
}

fn bucket_operation(
    method: &Method,
    has: &dyn Fn(&str) -> bool,
    bucket_arn: String,
    body: Option<&[u8]>,
) -> Result<Vec<Access>, String> {
    // (subresource, action for GET/HEAD, for PUT, for DELETE)
    const CONFIGURATIONS: [(&str, &str, &str, &str); 7] = [
        ("cors", "s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"),
        (
            "policy",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
        ),
        (
            "lifecycle",
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
        ),
        (
            "tagging",
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "s3:PutBucketTagging",
        ),
        ("acl", "s3:GetBucketAcl", "s3:PutBucketAcl", "s3:PutBucketAcl"),
        (
            "notification",
            "s3:GetBucketNotification",
            "s3:PutBucketNotification",
            "s3:PutBucketNotification",
        ),
        (
            "versioning",
            "s3:GetBucketVersioning",
            "s3:PutBucketVersioning",
            "s3:PutBucketVersioning",
        ),
    ];
    let one = |action: &'static str| {
        Ok(vec![Access {
            action,
            resource: bucket_arn.clone(),
        }])
    };
    if let Some((_, get, put, delete)) = CONFIGURATIONS.iter().find(|(name, ..)| has(name)) {
        return match *method {
            Method::GET | Method::HEAD => one(get),
            Method::PUT => one(put),
            Method::DELETE => one(delete),
            _ => Err(format!("{method} on a bucket configuration is not an S3 operation")),
        };
    }
    match *method {
        Method::GET if has("location") => one("s3:GetBucketLocation"),
        Method::GET if has("uploads") => one("s3:ListBucketMultipartUploads"),
        Method::GET if has("versions") => one("s3:ListBucketVersions"),
        // ListObjects(V2), and HeadBucket, which S3 authorizes as listing.
        Method::GET | Method::HEAD => one("s3:ListBucket"),
        Method::PUT => one("s3:CreateBucket"),
        Method::DELETE => one("s3:DeleteBucket"),
        Method::POST if has("delete") => {
            let body = body.ok_or_else(|| "a multi-object delete is judged by its body".to_owned())?;
            let keys = deleted_keys(body)?;
            Ok(keys
                .into_iter()
                .map(|key| Access {
                    action: "s3:DeleteObject",
                    resource: format!("{bucket_arn}/{key}"),
                })
                .collect())
        }
        _ => Err(format!(
            "{method} on a bucket is not an S3 operation this stand-in knows"
        )),
    }
}

/// The query's parameter names (S3's subresources are names, most without a value).
fn subresources(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
}

/// The `<Key>`s of a `DeleteObjects` request body (`<Delete><Object><Key>k</Key></Object>...`).
fn deleted_keys(body: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the delete request is not UTF-8 XML".to_owned())?;
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<Key>") {
        let after = &rest[start + "<Key>".len()..];
        let end = after
            .find("</Key>")
            .ok_or_else(|| "a <Key> of the delete request is not closed".to_owned())?;
        keys.push(unescape_xml(&after[..end]));
        rest = &after[end..];
    }
    if keys.is_empty() {
        return Err("the delete request names no key".to_owned());
    }
    Ok(keys)
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The access key of a SigV4 request: the `Authorization` header's, or a presigned URL's
/// `X-Amz-Credential` (`<key>/<date>/<region>/s3/aws4_request`, percent-encoded).
pub fn access_key(headers: &HeaderMap, query: &str) -> Option<String> {
    if let Some(authorization) = headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return super::access_key_id(authorization).map(str::to_owned);
    }
    let credential = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    let credential = percent_decode(credential);
    let key = credential.split('/').next()?;
    (!key.is_empty()).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(method: Method, target: &str, headers: &[(&str, &str)]) -> Vec<(String, String)> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        accesses(&method, path, query, &map, None)
            .unwrap()
            .into_iter()
            .map(|a| (a.action.to_owned(), a.resource))
            .collect()
    }

    fn pair(action: &str, resource: &str) -> (String, String) {
        (action.to_owned(), resource.to_owned())
    }

    #[test]
    fn object_operations_name_the_object_and_their_action() {
        let object = "arn:aws:s3:::B/uploads/a b/c.png";
        assert_eq!(
            asked(
                Method::GET,
                "/B/uploads/a%20b/c.png?X-Amz-Credential=x&response-content-disposition=y",
                &[]
            ),
            [pair("s3:GetObject", object)]
        );
        assert_eq!(
            asked(Method::HEAD, "/B/uploads/a%20b/c.png", &[]),
            [pair("s3:GetObject", object)]
        );
        assert_eq!(
            asked(Method::DELETE, "/B/uploads/a%20b/c.png", &[]),
            [pair("s3:DeleteObject", object)]
        );
        assert_eq!(
            asked(Method::DELETE, "/B/uploads/a%20b/c.png?tagging", &[]),
            [pair("s3:DeleteObjectTagging", object)]
        );
        assert_eq!(
            asked(Method::GET, "/B/uploads/a%20b/c.png?tagging", &[]),
            [pair("s3:GetObjectTagging", object)]
        );
        assert_eq!(
            asked(Method::DELETE, "/B/uploads/a%20b/c.png?uploadId=1", &[]),
            [pair("s3:AbortMultipartUpload", object)]
        );
        assert_eq!(
            asked(Method::POST, "/B/uploads/a%20b/c.png?uploads", &[]),
            [pair("s3:PutObject", object)]
        );
    }

    #[test]
    fn a_put_needs_an_action_for_each_thing_its_headers_ask() {
        let object = "arn:aws:s3:::B/uploads/k";
        assert_eq!(asked(Method::PUT, "/B/uploads/k", &[]), [pair("s3:PutObject", object)]);
        assert_eq!(
            asked(Method::PUT, "/B/uploads/k", &[("x-amz-tagging", "state=unattached")]),
            [pair("s3:PutObject", object), pair("s3:PutObjectTagging", object)]
        );
        assert_eq!(
            asked(
                Method::PUT,
                "/B/uploads/k",
                &[("x-amz-copy-source", "/B/other%20key?versionId=3")]
            ),
            [
                pair("s3:PutObject", object),
                pair("s3:GetObject", "arn:aws:s3:::B/other key")
            ]
        );
        assert_eq!(
            asked(Method::PUT, "/B/uploads/k?tagging", &[]),
            [pair("s3:PutObjectTagging", object)]
        );
    }

    #[test]
    fn bucket_operations_name_the_bucket() {
        assert_eq!(
            asked(Method::GET, "/B?list-type=2&prefix=u", &[]),
            [pair("s3:ListBucket", "arn:aws:s3:::B")]
        );
        assert_eq!(
            asked(Method::HEAD, "/B", &[]),
            [pair("s3:ListBucket", "arn:aws:s3:::B")]
        );
        assert_eq!(
            asked(Method::PUT, "/B?cors", &[]),
            [pair("s3:PutBucketCORS", "arn:aws:s3:::B")]
        );
        assert_eq!(
            asked(Method::DELETE, "/B?policy", &[]),
            [pair("s3:DeleteBucketPolicy", "arn:aws:s3:::B")]
        );
        assert_eq!(asked(Method::GET, "/", &[]), [pair("s3:ListAllMyBuckets", "*")]);
    }

    #[test]
    fn a_multi_object_delete_needs_delete_on_every_key() {
        assert!(needs_body(&Method::POST, "/B", "delete"));
        assert!(!needs_body(&Method::POST, "/B/k", "uploads"));
        let body = b"<Delete><Object><Key>uploads/a</Key></Object><Object><Key>x&amp;y</Key></Object></Delete>";
        let needed = accesses(&Method::POST, "/B", "delete", &HeaderMap::new(), Some(body)).unwrap();
        assert_eq!(
            needed
                .iter()
                .map(|a| (a.action, a.resource.as_str()))
                .collect::<Vec<_>>(),
            [
                ("s3:DeleteObject", "arn:aws:s3:::B/uploads/a"),
                ("s3:DeleteObject", "arn:aws:s3:::B/x&y")
            ]
        );
        assert!(accesses(&Method::POST, "/B", "delete", &HeaderMap::new(), Some(b"<Delete/>")).is_err());
        assert!(accesses(&Method::POST, "/B", "delete", &HeaderMap::new(), None).is_err());
    }

    #[test]
    fn requests_it_cannot_place_are_errors() {
        assert!(accesses(&Method::PATCH, "/B/k", "", &HeaderMap::new(), None).is_err());
        assert!(accesses(&Method::POST, "/B/k", "", &HeaderMap::new(), None).is_err());
        assert!(accesses(&Method::DELETE, "/", "", &HeaderMap::new(), None).is_err());
    }

    #[test]
    fn the_caller_is_the_header_or_the_presigned_credential() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            access_key(&headers, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIALOCAL1%2F20261207%2Fus-east-1%2Fs3%2Faws4_request"),
            Some("ASIALOCAL1".to_owned())
        );
        headers.insert(
            hyper::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=ASIALOCAL2/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key(&headers, ""), Some("ASIALOCAL2".to_owned()));
        assert_eq!(access_key(&HeaderMap::new(), "prefix=a"), None);
    }
}
