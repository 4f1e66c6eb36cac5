CREATE TABLE `held_tags` (
	`community_id` text NOT NULL,
	`credential_id` text NOT NULL,
	`name` text NOT NULL,
	`tag_id` integer NOT NULL,
	`held_at` integer NOT NULL,
	PRIMARY KEY(`community_id`, `credential_id`, `name`)
);
