"""The GitLab side of the workflow: takes plans and declarations, gives merge-request notes
updated in place (``notes``) and notices of syncs and manual cohorts about to expire
(``expiring``)."""
