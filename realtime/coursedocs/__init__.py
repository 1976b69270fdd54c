"""Course documents co-edited live with Yjs, stored without loss, served to the ENT."""
