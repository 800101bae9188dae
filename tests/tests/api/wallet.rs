//! Ethereum wallet sign-in (EIP-191 personal_sign over a one-time challenge), against DynamoDB Local.

use k256::ecdsa::SigningKey;
use parley::api::{auth, users};
use parley::auth::wallet::{address_of_key, personal_sign};
use parley::store::ChallengeRecord;
use parley_tests::{TestApp, TestRequest, TestResponse};
use serde_json::json;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).expect("a valid secp256k1 scalar")
}

async fn challenge(app: &TestApp, address: &str) -> TestResponse {
    app.call(
        auth::wallet_challenge,
        TestRequest::new("POST", "/auth/wallet/challenge").json(json!({ "address": address })),
    )
    .await
}

async fn verify(app: &TestApp, address: &str, signature: &str) -> TestResponse {
    app.call(
        auth::wallet_verify,
        TestRequest::new("POST", "/auth/wallet/verify").json(json!({ "address": address, "signature": signature })),
    )
    .await
}

#[tokio::test]
async fn first_sign_in_creates_the_user_and_later_ones_find_it() {
    let app = TestApp::new().await;
    let wallet = key(1);
    let address = address_of_key(&wallet).checksummed();

    let issued = challenge(&app, &address).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let message = issued.body["message"].as_str().unwrap();
    assert!(message.contains(&address), "the message names the address: {message}");
    assert!(message.contains("Nonce: "));
    assert!(issued.body["expiresAt"].as_str().unwrap().ends_with('Z'));

    let signed_in = verify(&app, &address, &personal_sign(&wallet, message)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let user = &signed_in.body["user"];
    assert_eq!(user["walletAddress"], address.as_str());
    assert_eq!(user["username"].as_str().unwrap().len(), 32);
    let access = signed_in.body["accessToken"].as_str().unwrap();
    let me = app
        .call(users::get_me, TestRequest::new("GET", "/users/me").bearer(access))
        .await;
    assert_eq!(me.body["id"], user["id"]);

    // Lower-case address, second sign-in: same user.
    let lower = address.to_lowercase();
    let again = challenge(&app, &lower).await;
    let message = again.body["message"].as_str().unwrap();
    let second = verify(&app, &lower, &personal_sign(&wallet, message)).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["user"]["id"], user["id"]);
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    let app = TestApp::new().await;
    let wallet = key(2);
    let address = address_of_key(&wallet).checksummed();
    let message = challenge(&app, &address).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = personal_sign(&wallet, &message);
    assert_eq!(verify(&app, &address, &signature).await.status, 200);
    verify(&app, &address, &signature)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_signature_from_another_address_is_refused_and_leaves_the_challenge_usable() {
    let app = TestApp::new().await;
    let owner = key(3);
    let impostor = key(4);
    let address = address_of_key(&owner).checksummed();
    let message = challenge(&app, &address).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();

    verify(&app, &address, &personal_sign(&impostor, &message))
        .await
        .assert_error(401, "unauthorized");
    verify(&app, &address, &personal_sign(&owner, "some other message"))
        .await
        .assert_error(401, "unauthorized");
    let users = app
        .all_keys()
        .await
        .into_iter()
        .filter(|(_, sk)| sk == "PROFILE")
        .count();
    assert_eq!(users, 0, "no account was created");

    assert_eq!(
        verify(&app, &address, &personal_sign(&owner, &message)).await.status,
        200
    );
}

#[tokio::test]
async fn without_a_current_challenge_there_is_no_sign_in() {
    let app = TestApp::new().await;
    let wallet = key(5);
    let address = address_of_key(&wallet);
    verify(&app, &address.checksummed(), &personal_sign(&wallet, "anything"))
        .await
        .assert_error(401, "unauthorized");

    // An expired challenge (written straight to the store, five minutes late).
    let message = "parley.chat wants you to sign in".to_owned();
    app.context
        .store
        .put_challenge(&ChallengeRecord {
            address: address.as_lowercase().to_owned(),
            nonce: "00".repeat(16),
            message: message.clone(),
            expires_at: parley::time::epoch_secs(std::time::SystemTime::now()) - 1,
        })
        .await
        .unwrap();
    verify(&app, &address.checksummed(), &personal_sign(&wallet, &message))
        .await
        .assert_error(401, "unauthorized");

    // A newer challenge does not cancel an older one (another device's, or one someone else asked
    // for): each signs in, once.
    let old = challenge(&app, &address.checksummed()).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = challenge(&app, &address.checksummed()).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old, new);
    for message in [&old, &new] {
        let signature = personal_sign(&wallet, message);
        assert_eq!(verify(&app, &address.checksummed(), &signature).await.status, 200);
        verify(&app, &address.checksummed(), &signature)
            .await
            .assert_error(401, "unauthorized");
    }
}

async fn verify_message(app: &TestApp, address: &str, signature: &str, message: &str) -> TestResponse {
    app.call(
        auth::wallet_verify,
        TestRequest::new("POST", "/auth/wallet/verify")
            .json(json!({ "address": address, "signature": signature, "message": message })),
    )
    .await
}

/// The message is EIP-4361's, field by field, so wallets can show where the sign-in comes from; the
/// nonce is the challenge's own.
#[tokio::test]
async fn the_challenge_is_a_sign_in_with_ethereum_message() {
    let app = TestApp::new().await;
    let address = address_of_key(&key(9)).checksummed();
    let first = challenge(&app, &address).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = challenge(&app, &address).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], "parley.chat wants you to sign in with your Ethereum account:");
    assert_eq!(lines[1], address);
    assert_eq!(lines[2], "");
    assert!(lines[3].starts_with("Sign in to Parley."));
    assert_eq!(lines[4], "");
    let fields: Vec<&str> = lines[5..].iter().map(|l| l.split_once(": ").unwrap().0).collect();
    assert_eq!(
        fields,
        ["URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time"],
        "{first}"
    );
    assert_eq!(lines[5], "URI: https://parley.chat");
    assert_eq!(lines[6], "Version: 1");
    assert_eq!(lines[7], "Chain ID: 1");
    let nonce = |m: &str| parley::auth::wallet::nonce_of(m).unwrap().to_owned();
    assert_ne!(nonce(&first), nonce(&second), "a nonce per challenge");
}

/// Someone who asks for many challenges for an address cannot push its owner's out: the owner's
/// client names its message and gets exactly that challenge.
#[tokio::test]
async fn other_challenges_for_the_address_do_not_block_its_owner() {
    let app = TestApp::new().await;
    let wallet = key(10);
    let address = address_of_key(&wallet).checksummed();
    let mine = challenge(&app, &address).await.body["message"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..30 {
        assert_eq!(challenge(&app, &address).await.status, 200);
    }
    let signature = personal_sign(&wallet, &mine);
    let null_message = app
        .call(
            auth::wallet_verify,
            TestRequest::new("POST", "/auth/wallet/verify")
                .json(json!({ "address": address, "signature": signature, "message": null })),
        )
        .await;
    null_message.assert_error(400, "validation_failed");
    // A message that is not one of the address's challenges is refused, and uses nothing up.
    verify_message(&app, &address, &signature, &mine.replace("Nonce: ", "Nonce: 0"))
        .await
        .assert_error(401, "unauthorized");
    let signed_in = verify_message(&app, &address, &signature, &mine).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    verify_message(&app, &address, &signature, &mine)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn malformed_addresses_and_signatures_are_validation_errors() {
    let app = TestApp::new().await;
    for bad in [
        "",
        "0x1234",
        "2c7536e3605d9c16a7a3d7b1898e529396a65c23",
        "0x2C7536e3605d9c16a7a3d7b1898e529396a65c23",
        "0xZZ7536e3605d9c16a7a3d7b1898e529396a65c23",
    ] {
        challenge(&app, bad).await.assert_error(400, "validation_failed");
    }
    let wrong_type = TestRequest::new("POST", "/auth/wallet/challenge").json(json!({ "address": 7 }));
    app.call(auth::wallet_challenge, wrong_type)
        .await
        .assert_error(400, "validation_failed");

    let address = address_of_key(&key(6)).checksummed();
    for bad in [
        "0x",
        "0x1234",
        &format!("0x{}", "ab".repeat(64)),
        &format!("0x{}ff", "ab".repeat(64)),
        "not hex at all",
    ] {
        let response = verify(&app, &address, bad).await;
        response.assert_error(400, "validation_failed");
        assert_eq!(response.body["error"]["details"][0]["field"], "signature");
    }
    assert!(app.all_keys().await.is_empty());
}
