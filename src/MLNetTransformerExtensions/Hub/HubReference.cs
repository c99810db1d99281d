namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// A hub model named as <c>name</c> or <c>owner/name</c>, optionally followed by <c>@revision</c> (a branch, a tag
/// or a commit; <c>main</c> when absent).
/// </summary>
internal sealed record HubReference(string RepoId, string Revision)
{
    internal const string DefaultRevision = "main";

    // The hub's own limit on a repository id's length.
    private const int MaxRepoIdLength = 96;

    /// <summary>Whether the revision is a full commit hash, whose content can never change.</summary>
    internal bool RevisionIsCommit => IsCommitHash(Revision);

    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    internal static bool IsCommitHash(string text) => text.Length == 40 && text.All(char.IsAsciiHexDigitLower);

    /// <summary>Parses <paramref name="text"/>, or raises an error that shows the accepted forms.</summary>
    internal static HubReference Parse(string text) =>
        TryParse(text, out var reference, out var problem)
            ? reference
            : throw new HubException(
                HubErrorKind.InvalidModelId,
                text,
                null,
                null,
                $"'{text}' is not a HuggingFace model id: {problem}. Use name or owner/name, optionally followed by @revision (a branch, tag or commit), e.g. google-bert/bert-base-uncased@main, or the path of an existing local folder.");

    internal static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HubReference? reference, out string problem)
    {
        reference = null;
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var repoId = at < 0 ? text : text[..at];
        var revision = at < 0 ? DefaultRevision : text[(at + 1)..];

        problem = RepoIdProblem(repoId) ?? RevisionProblem(revision) ?? "";
        if (problem.Length > 0)
        {
            return false;
        }

        reference = new HubReference(repoId, revision);
        return true;
    }

    private static string? RepoIdProblem(string repoId)
    {
        if (repoId.Length == 0)
        {
            return "the id is empty";
        }

        if (repoId.Length > MaxRepoIdLength)
        {
            return $"an id has at most {MaxRepoIdLength} characters";
        }

        var parts = repoId.Split('/');
        if (parts.Length > 2)
        {
            return "an id has at most one '/'";
        }

        foreach (var part in parts)
        {
            if (part.Length == 0)
            {
                return "an owner or name is empty";
            }

            if (!part.All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                return $"'{part}' may hold only letters, digits, '-', '_' and '.'";
            }

            if (part[0] is '-' or '.' || part[^1] is '-' or '.')
            {
                return $"'{part}' may not start or end with '-' or '.'";
            }

            if (part.Contains("--", StringComparison.Ordinal) || part.Contains("..", StringComparison.Ordinal))
            {
                return $"'{part}' may not contain '--' or '..'";
            }
        }

        return null;
    }

    // Revisions become URL segments and names under refs/, so they must stay inside that folder.
    private static string? RevisionProblem(string revision)
    {
        if (revision.Length == 0)
        {
            return "the revision after '@' is empty";
        }

        if (revision.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '\\' or '@')
            || revision.Split('/').Any(segment => segment is "" or "." or ".."))
        {
            return $"'{revision}' is not a branch, tag or commit name";
        }

        return null;
    }
}
