CREATE TABLE `connections` (
	`community_id` text PRIMARY KEY NOT NULL,
	`api_key_ciphertext` text NOT NULL,
	`key_hint` text NOT NULL,
	`status` text NOT NULL,
	`account_json` text,
	`credential_id` text NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `connections_credential_idx` ON `connections` (`credential_id`);--> statement-breakpoint
CREATE TABLE `mappings` (
	`community_id` text PRIMARY KEY NOT NULL,
	`document` text NOT NULL,
	`updated_at` text NOT NULL
);
