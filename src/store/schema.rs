// One portable schema for both backends: only types MultiConnection carries
// (Text, Bool, Integer, Timestamp). Ids, URI lists and scope sets are Text.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        email_verified -> Bool,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        picture -> Nullable<Text>,
        locale -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        sid -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        secret_hash -> Nullable<Text>,
        name -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        allowed_scopes -> Text,
        grant_types -> Text,
        is_public -> Bool,
        first_party -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        audiences -> Text,
        id_token_alg -> Nullable<Text>,
        locked -> Bool,
        registration_token_hash -> Nullable<Text>,
        secret_changed_at -> Nullable<Timestamp>,
        resource_audiences -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        require_mfa -> Bool,
        token_endpoint_auth_method -> Text,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        state -> Text,
        private_jwk_enc -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        activate_after -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        target -> Text,
        ip -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        auth_time -> Timestamp,
        sid -> Nullable<Text>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        resource -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        redirect_uri -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        scope -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_groups (user_id, group_id) {
        user_id -> Text,
        group_id -> Text,
    }
}

diesel::table! {
    scopes (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        machine_grantable -> Bool,
    }
}

diesel::table! {
    scope_groups (scope_name, group_id) {
        scope_name -> Text,
        group_id -> Text,
    }
}

diesel::table! {
    initial_access_tokens (token_hash) {
        token_hash -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        max_uses -> Integer,
        uses -> Integer,
    }
}

diesel::table! {
    logout_outbox (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        sid -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> Integer,
        claimed_until -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        gave_up_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    logout_delivery_attempts (outbox_id, attempt) {
        outbox_id -> Text,
        attempt -> Integer,
        at -> Timestamp,
        http_status -> Nullable<Integer>,
        delivered -> Bool,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    device_codes (device_code_hash) {
        device_code_hash -> Text,
        user_code_hash -> Text,
        client_id -> Text,
        scope -> Text,
        resource -> Nullable<Text>,
        refresh_token_hash -> Text,
        interval_secs -> Integer,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_polled_at -> Nullable<Timestamp>,
        grant_id -> Nullable<Text>,
        denied_at -> Nullable<Timestamp>,
        redeemed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    personal_access_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        hint -> Text,
        scope -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mfa_totp (user_id) {
        user_id -> Text,
        secret_enc -> Text,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> Nullable<Integer>,
        last_used_at -> Nullable<Timestamp>,
        started_by -> Nullable<Text>,
    }
}

diesel::table! {
    mfa_recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mfa_challenges (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        attempts -> Integer,
    }
}

diesel::table! {
    mfa_enrol_deadlines (user_id) {
        user_id -> Text,
        deadline -> Timestamp,
    }
}

diesel::joinable!(authorization_codes -> grants (grant_id));
diesel::joinable!(device_codes -> grants (grant_id));
diesel::joinable!(logout_outbox -> clients (client_id));
diesel::joinable!(logout_delivery_attempts -> logout_outbox (outbox_id));
diesel::joinable!(user_groups -> groups (group_id));
diesel::joinable!(user_groups -> users (user_id));
diesel::joinable!(scope_groups -> groups (group_id));
diesel::joinable!(scope_groups -> scopes (scope_name));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(personal_access_tokens -> users (user_id));
diesel::joinable!(mfa_totp -> users (user_id));
diesel::joinable!(mfa_recovery_codes -> users (user_id));
diesel::joinable!(mfa_challenges -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    clients,
    login_throttle,
    signing_keys,
    audit_log,
    grants,
    authorization_codes,
    refresh_tokens,
    consents,
    revoked_tokens,
    groups,
    user_groups,
    scopes,
    scope_groups,
    initial_access_tokens,
    logout_outbox,
    logout_delivery_attempts,
    device_codes,
    personal_access_tokens,
    mfa_totp,
    mfa_recovery_codes,
    mfa_challenges,
    mfa_enrol_deadlines
);
