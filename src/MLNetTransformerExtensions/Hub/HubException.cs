namespace MLNetTransformerExtensions.Hub;

/// <summary>What went wrong when fetching a model from a HuggingFace Hub.</summary>
public enum HubErrorKind
{
    /// <summary>The text is neither an existing folder nor a hub id (<c>name</c> or <c>owner/name</c>, optionally <c>@revision</c>).</summary>
    InvalidModelId,

    /// <summary>The hub does not know the repository, or hides it because it is private and no valid token was sent.</summary>
    RepositoryNotFound,

    /// <summary>The repository has no such branch, tag or commit.</summary>
    RevisionNotFound,

    /// <summary>The repository has no such file at that revision.</summary>
    EntryNotFound,

    /// <summary>The hub wants a token (401), refused the one sent, or denies access (403, gated repository).</summary>
    AuthenticationRequired,

    /// <summary>Offline mode is on and the cache does not hold what was asked for.</summary>
    NotCachedOffline,

    /// <summary>The hub could not be reached or answered with a server error, and nothing usable was cached.</summary>
    HubUnreachable,

    /// <summary>The server's answer lacks what every HuggingFace Hub sends (commit, ETag or size headers).</summary>
    UnexpectedResponse,

    /// <summary>A download stopped before its end; the partial file is kept aside and the next run resumes it.</summary>
    TransferInterrupted,

    /// <summary>A downloaded file has the wrong size or SHA-256 and was discarded.</summary>
    IntegrityCheckFailed,

    /// <summary>The repository lacks a file every checkpoint needs (<c>config.json</c>, weights, or a shard its index names).</summary>
    IncompleteCheckpoint,
}

/// <summary>The error raised when a model cannot be fetched; its message names the repository and says what to do.</summary>
public sealed class HubException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">What went wrong.</param>
    /// <param name="repoId">The repository concerned (<c>owner/name</c>), or the text that failed to parse.</param>
    /// <param name="revision">The branch, tag or commit asked for, if known.</param>
    /// <param name="fileName">The file concerned, if any.</param>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public HubException(HubErrorKind kind, string repoId, string? revision, string? fileName, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        RepoId = repoId;
        Revision = revision;
        FileName = fileName;
    }

    /// <summary>What went wrong.</summary>
    public HubErrorKind Kind { get; }

    /// <summary>The repository concerned (<c>owner/name</c>), or the text that failed to parse.</summary>
    public string RepoId { get; }

    /// <summary>The branch, tag or commit asked for, if known.</summary>
    public string? Revision { get; }

    /// <summary>The file concerned, if any.</summary>
    public string? FileName { get; }
}
