using System.Collections.Concurrent;
using MLNetTransformerExtensions.Diagnostics;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// What a chat classifier has cost and how its answers went, counted since it was trained or given a client: rows
/// scored, requests sent (retries included), tokens, cache hits, replies that named no label and rows whose requests
/// all failed. The same counts go to the library's meter (<c>mlnet_transformers.chat.*</c>).
/// </summary>
/// <remarks>Read it after <c>Transform</c> has been consumed (for example after <c>Evaluate</c>): scoring is lazy.</remarks>
public sealed class ChatClassifierUsage
{
    /// <summary>How many problem lines are kept; the counts go on past it.</summary>
    public const int MaximumProblems = 1000;

    private readonly ConcurrentQueue<string> _failures = new();
    private long _rows;
    private long _requests;
    private long _retries;
    private long _promptTokens;
    private long _completionTokens;
    private long _cacheHits;
    private long _unparsed;
    private long _failed;

    internal ChatClassifierUsage()
    {
    }

    /// <summary>Rows scored.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>Requests sent to the service, retries included (cache hits are not requests).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Of <see cref="Requests"/>, the retries after a transient fault.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Prompt (input) tokens the service reported.</summary>
    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    /// <summary>Completion (output) tokens the service reported.</summary>
    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    /// <summary>Rows answered from the response cache, at no cost.</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);

    /// <summary>Replies that named none of the labels, even read tolerantly (scored by <see cref="ChatUnparsedPolicy"/>).</summary>
    public long Unparsed => Interlocked.Read(ref _unparsed);

    /// <summary>Rows whose requests failed after every retry (scored by <see cref="ChatUnparsedPolicy"/>).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>
    /// One line per unparsed or failed row, the first <see cref="MaximumProblems"/> of them: the row's number (counted
    /// from 0 over every row this classifier scored) and what went wrong.
    /// </summary>
    public IReadOnlyList<string> Problems => [.. _failures];

    /// <summary>A copy of the counts as they are now.</summary>
    /// <returns>The copy.</returns>
    public ChatClassifierUsage Snapshot()
    {
        var copy = new ChatClassifierUsage
        {
            _rows = Rows,
            _requests = Requests,
            _retries = Retries,
            _promptTokens = PromptTokens,
            _completionTokens = CompletionTokens,
            _cacheHits = CacheHits,
            _unparsed = Unparsed,
            _failed = Failed,
        };
        foreach (var failure in _failures)
        {
            copy._failures.Enqueue(failure);
        }

        return copy;
    }

    /// <summary>A one-line summary, for logs.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() =>
        $"{Rows} rows, {Requests} requests ({Retries} retries), {PromptTokens} prompt and {CompletionTokens} completion tokens, {CacheHits} cache hits, {Unparsed} unparsed, {Failed} failed";

    internal long AddRows(long count) => Interlocked.Add(ref _rows, count) - count;

    internal void AddRequest()
    {
        Interlocked.Increment(ref _requests);
        TransformerTelemetry.ChatRequests.Add(1);
    }

    internal void AddRetry()
    {
        Interlocked.Increment(ref _retries);
        TransformerTelemetry.ChatRetries.Add(1);
    }

    internal void AddTokens(long prompt, long completion)
    {
        Interlocked.Add(ref _promptTokens, prompt);
        Interlocked.Add(ref _completionTokens, completion);
        TransformerTelemetry.ChatPromptTokens.Add(prompt);
        TransformerTelemetry.ChatCompletionTokens.Add(completion);
    }

    internal void AddCacheHit()
    {
        Interlocked.Increment(ref _cacheHits);
        TransformerTelemetry.ChatCacheHits.Add(1);
    }

    internal void AddUnparsed(long row, string reply)
    {
        Interlocked.Increment(ref _unparsed);
        TransformerTelemetry.ChatUnparsed.Add(1);
        Note($"row {row}: the reply names no label: {Shorten(reply)}");
    }

    internal void AddFailed(long row, string problem)
    {
        Interlocked.Increment(ref _failed);
        TransformerTelemetry.ChatFailed.Add(1);
        Note($"row {row}: {problem}");
    }

    private void Note(string problem)
    {
        if (_failures.Count < MaximumProblems)
        {
            _failures.Enqueue(problem);
        }
    }

    private static string Shorten(string reply) => reply.Length <= 200 ? reply : reply[..200] + "…";
}
