CREATE TABLE "held_tags" (
	"community_id" text NOT NULL,
	"credential_id" text NOT NULL,
	"name" text NOT NULL,
	"tag_id" bigint NOT NULL,
	"held_at" bigint NOT NULL,
	CONSTRAINT "held_tags_pk" PRIMARY KEY("community_id","credential_id","name")
);
