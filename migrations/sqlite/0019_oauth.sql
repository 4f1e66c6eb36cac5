CREATE TABLE `oauth_installs` (
	`code_hash` text PRIMARY KEY NOT NULL,
	`return_to` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer
);
--> statement-breakpoint
CREATE INDEX `oauth_installs_expires_idx` ON `oauth_installs` (`expires_at`);--> statement-breakpoint
CREATE TABLE `oauth_states` (
	`state_hash` text PRIMARY KEY NOT NULL,
	`community_id` text NOT NULL,
	`session_sub` text NOT NULL,
	`verifier_ciphertext` text NOT NULL,
	`return_to` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer
);
--> statement-breakpoint
CREATE INDEX `oauth_states_community_idx` ON `oauth_states` (`community_id`,`session_sub`);--> statement-breakpoint
CREATE INDEX `oauth_states_expires_idx` ON `oauth_states` (`expires_at`);--> statement-breakpoint
ALTER TABLE `connections` ADD `kind` text DEFAULT 'api_key' NOT NULL;--> statement-breakpoint
ALTER TABLE `connections` ADD `refresh_token_ciphertext` text;--> statement-breakpoint
ALTER TABLE `connections` ADD `token_expires_at` integer;--> statement-breakpoint
ALTER TABLE `connections` ADD `token_refresh_at` integer;--> statement-breakpoint
ALTER TABLE `connections` ADD `refresh_lease_until` integer;