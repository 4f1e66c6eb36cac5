CREATE TABLE `kit_budget_blocks` (
	`credential_id` text PRIMARY KEY NOT NULL,
	`until` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `kit_budget_ledger` (
	`id` text PRIMARY KEY NOT NULL,
	`credential_id` text NOT NULL,
	`taken_at` integer NOT NULL,
	`frees_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `kit_budget_ledger_credential_idx` ON `kit_budget_ledger` (`credential_id`,`frees_at`);