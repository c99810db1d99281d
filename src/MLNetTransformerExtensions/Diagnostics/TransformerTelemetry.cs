using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MLNetTransformerExtensions.Diagnostics;

/// <summary>
/// Where the library's time goes, published the .NET way: one <see cref="Meter"/> and one <see cref="ActivitySource"/>
/// named <see cref="Name"/>, read by <c>dotnet-counters</c>, OpenTelemetry or any <see cref="MeterListener"/> (our
/// benchmarks use one). Stage durations are histograms in seconds, recorded once per batch or pass, never per row.
/// Nothing is measured unless someone listens: <see cref="Start"/> reads the instrument's <c>Enabled</c> flag and
/// returns 0 when it is off, and <see cref="Stop"/> then does nothing, so the core pays one field read per call.
/// </summary>
internal static class TransformerTelemetry
{
    /// <summary>The name of the meter and of the activity source.</summary>
    public const string Name = "MLNetTransformerExtensions";

    private static readonly string? s_version = typeof(TransformerTelemetry).Assembly.GetName().Version?.ToString();

    /// <summary>The library's meter.</summary>
    public static readonly Meter Meter = new(Name, s_version);

    /// <summary>Spans for fitting, each training epoch and each scoring pass.</summary>
    public static readonly ActivitySource ActivitySource = new(Name, s_version);

    /// <summary>Reading rows out of an input data view (texts and labels into memory, or into a scoring batch).</summary>
    public static readonly Histogram<double> ReadRows = Stage("read_rows", "Reading rows out of the input data view.");

    /// <summary>Resolving the model folder and building the network (weights loaded or initialised).</summary>
    public static readonly Histogram<double> Setup = Stage("setup", "Resolving the model folder and building the network.");

    /// <summary>Turning texts into token ids.</summary>
    public static readonly Histogram<double> Tokenization = Stage("tokenization", "Turning texts into token ids.");

    /// <summary>Grouping rows into batches, padding them and copying them into tensors.</summary>
    public static readonly Histogram<double> Batching = Stage("batching", "Grouping rows into batches, padding them and copying them into tensors.");

    /// <summary>The forward pass (and the loss when training; softmax and reading probabilities out when scoring).</summary>
    public static readonly Histogram<double> Forward = Stage("forward", "The network's forward pass, with the loss when training or the probabilities when scoring.");

    /// <summary>The backward pass, including freeing the step's tensors.</summary>
    public static readonly Histogram<double> Backward = Stage("backward", "The backward pass, including freeing the step's tensors.");

    /// <summary>Gradient clipping, the optimizer step and zeroing the gradients.</summary>
    public static readonly Histogram<double> OptimizerStep = Stage("optimizer_step", "Gradient clipping, the optimizer step and zeroing the gradients.");

    /// <summary>Padded batches run through the network for scoring.</summary>
    public static readonly Counter<long> Batches = Meter.CreateCounter<long>("mlnet_transformers.batches", "{batch}", "Padded batches run through the network for scoring.");

    /// <summary>Real (not padding) tokens in those batches.</summary>
    public static readonly Counter<long> Tokens = Meter.CreateCounter<long>("mlnet_transformers.tokens", "{token}", "Real (not padding) tokens in the scored batches.");

    /// <summary>Token slots in those batches after padding (rows × longest row).</summary>
    public static readonly Counter<long> PaddedTokens = Meter.CreateCounter<long>("mlnet_transformers.padded_tokens", "{token}", "Token slots in the scored batches after padding (rows × longest row).");

    /// <summary>Requests a chat classifier sent to its chat service, retries included.</summary>
    public static readonly Counter<long> ChatRequests = Meter.CreateCounter<long>("mlnet_transformers.chat.requests", "{request}", "Requests a chat classifier sent, retries included.");

    /// <summary>Retries after a transient fault (429, 5xx, a timeout, a malformed reply).</summary>
    public static readonly Counter<long> ChatRetries = Meter.CreateCounter<long>("mlnet_transformers.chat.retries", "{request}", "Chat requests retried after a transient fault.");

    /// <summary>Prompt tokens the chat service reported.</summary>
    public static readonly Counter<long> ChatPromptTokens = Meter.CreateCounter<long>("mlnet_transformers.chat.prompt_tokens", "{token}", "Prompt tokens the chat service reported.");

    /// <summary>Completion tokens the chat service reported.</summary>
    public static readonly Counter<long> ChatCompletionTokens = Meter.CreateCounter<long>("mlnet_transformers.chat.completion_tokens", "{token}", "Completion tokens the chat service reported.");

    /// <summary>Rows answered from the on-disk response cache.</summary>
    public static readonly Counter<long> ChatCacheHits = Meter.CreateCounter<long>("mlnet_transformers.chat.cache_hits", "{row}", "Rows a chat classifier answered from its response cache.");

    /// <summary>Replies that named no label.</summary>
    public static readonly Counter<long> ChatUnparsed = Meter.CreateCounter<long>("mlnet_transformers.chat.unparsed", "{row}", "Chat replies that named none of the labels.");

    /// <summary>Rows whose requests failed after every retry.</summary>
    public static readonly Counter<long> ChatFailed = Meter.CreateCounter<long>("mlnet_transformers.chat.failed", "{row}", "Rows whose chat requests failed after every retry.");

    /// <summary>A timestamp to pass to <see cref="Stop"/>, or 0 when nobody listens to <paramref name="stage"/>.</summary>
    public static long Start(Histogram<double> stage) => stage.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Records the seconds since <paramref name="start"/> in <paramref name="stage"/> (nothing when <paramref name="start"/> is 0).</summary>
    public static void Stop(Histogram<double> stage, long start)
    {
        if (start != 0)
        {
            stage.Record(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    /// <summary>Counts one padded batch: its real tokens and its size after padding.</summary>
    public static void CountBatch(long tokens, long paddedTokens)
    {
        Batches.Add(1);
        Tokens.Add(tokens);
        PaddedTokens.Add(paddedTokens);
    }

    private static Histogram<double> Stage(string name, string description) =>
        Meter.CreateHistogram<double>($"mlnet_transformers.{name}.duration", "s", description);
}
