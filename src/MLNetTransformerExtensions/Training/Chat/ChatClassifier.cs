using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Classification by a chat model (GPT-4-class, or any model behind an OpenAI-compatible server), zero- or few-shot:
/// nothing is trained; the labels and the demonstrations are all it keeps. Each text is one request: the prompt of
/// <see cref="ChatPrompt"/>, sent with retries (<see cref="ChatRequestSender"/>), answered from the response cache
/// when it has one, and read by <see cref="ChatAnswer"/>. Requests of a batch run in parallel up to the concurrency
/// limit, and the request and token budgets stop scoring when they are spent.
/// </summary>
internal sealed class ChatClassifier
{
    /// <summary>The file a saved chat classifier is, inside the folder the ML.NET model stores.</summary>
    public const string FileName = "chat-classifier.json";

    private const int FormatVersion = 1;

    private readonly ChatPrompt _prompt;

    public ChatClassifier(ChatClassifierSettings settings, IReadOnlyList<string> labels, IReadOnlyList<Demonstration> demonstrations)
    {
        settings.Validate();
        if (labels.Count < 2)
        {
            throw new ArgumentException($"A chat classifier needs at least two labels; got {labels.Count}.", nameof(labels));
        }

        if (labels.Select(l => l.Trim().ToUpperInvariant()).Distinct().Count() != labels.Count)
        {
            throw new ArgumentException($"The labels [{string.Join(", ", labels)}] differ only in case or spaces, so a chat model's reply could not tell them apart.", nameof(labels));
        }

        Settings = settings;
        Labels = labels;
        Demonstrations = demonstrations;
        _prompt = new ChatPrompt(settings, labels, demonstrations);
        Sender = new ChatRequestSender(settings, Usage);
    }

    public ChatClassifierSettings Settings { get; }

    public IReadOnlyList<string> Labels { get; }

    public IReadOnlyList<Demonstration> Demonstrations { get; }

    /// <summary>The client requests go to; null for a classifier loaded from a file until it is given one.</summary>
    public IChatClient? Client { get; set; }

    /// <summary>Where replies are kept on disk, or null for no cache.</summary>
    public ChatResponseCache? Cache { get; set; }

    /// <summary>Stops scoring when cancelled.</summary>
    public CancellationToken CancellationToken { get; set; }

    public ChatClassifierUsage Usage { get; } = new();

    public ChatRequestSender Sender { get; }

    /// <summary>Chooses <paramref name="shotsPerClass"/> demonstrations of each class, seeded (0 = zero-shot).</summary>
    public static IReadOnlyList<Demonstration> PickDemonstrations(LabeledTexts training, int classCount, int shotsPerClass, int seed) =>
        DemonstrationPicker.Balanced(training, classCount, shotsPerClass * classCount, seed);

    /// <summary>Class probabilities for a batch, one request per row (or a cache hit), up to the concurrency limit at a time.</summary>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts)
    {
        var client = Client ?? throw new InvalidOperationException(
            $"This chat classifier (model '{Settings.ModelId}') has no chat client: a model loaded from a file never holds one, nor a key. " +
            "Give it one after loading: model.UseChatClient(client), for example with ChatClients.CreateOpenAICompatible(\"" + Settings.ModelId + "\") " +
            "(it reads OPENAI_API_KEY and OPENAI_BASE_URL); on the command line, pass --endpoint and --chat-model.");
        var firstRow = Usage.AddRows(texts.Count);
        var results = new float[texts.Count][];
        // Off the caller's thread: ML.NET's cursors are synchronous, and a synchronization context must not deadlock them.
        Task.Run(() => Parallel.ForEachAsync(Enumerable.Range(0, texts.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Settings.MaximumConcurrency, CancellationToken = CancellationToken },
            async (i, token) => results[i] = await ClassifyAsync(client, firstRow + i, texts[i], secondTexts?[i], token).ConfigureAwait(false))).GetAwaiter().GetResult();
        return results;
    }

    public void Save(string folder)
    {
        var json = new JsonObject
        {
            ["format_version"] = FormatVersion,
            ["labels"] = new JsonArray([.. Labels.Select(l => JsonValue.Create(l))]),
            ["settings"] = Settings.ToJson(),
            ["demonstrations"] = new JsonArray([.. Demonstrations.Select(d => (JsonNode)new JsonObject
            {
                ["text"] = d.Text,
                ["text2"] = d.SecondText,
                ["label"] = d.Label,
            })]),
        };
        File.WriteAllText(Path.Combine(folder, FileName), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    public static ChatClassifier Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (JsonNode.Parse(File.ReadAllText(path)) is not JsonObject json || json["format_version"]?.GetValue<int>() != FormatVersion)
        {
            throw new FormatException($"{path} is not a chat classifier of format version {FormatVersion}.");
        }

        var labels = json["labels"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray();
        var demonstrations = json["demonstrations"]!.AsArray()
            .Select(d => new Demonstration(d!["text"]!.GetValue<string>(), d["text2"]?.GetValue<string>(), d["label"]!.GetValue<int>()))
            .ToArray();
        return new ChatClassifier(ChatClassifierSettings.FromJson(json["settings"]!.AsObject()), labels, demonstrations);
    }

    private async Task<float[]> ClassifyAsync(IChatClient client, long row, string text, string? secondText, CancellationToken cancellationToken)
    {
        var messages = _prompt.Messages(text, secondText);
        var key = Cache is null ? null : ChatResponseCache.KeyOf(_prompt.Describe(messages));
        var reply = key is null ? null : Cache!.TryGet(key);
        if (reply is not null)
        {
            Usage.AddCacheHit();
        }
        else
        {
            CheckBudget();
            try
            {
                reply = ChatReply.From(await Sender.SendAsync(client, messages, _prompt.Options(), cancellationToken).ConfigureAwait(false));
            }
            catch (ChatRequestFailedException e) when (e.Transient && Settings.UnparsedPolicy == ChatUnparsedPolicy.Uniform)
            {
                Usage.AddFailed(row, e.Message);
                return Uniform();
            }
            catch (ChatRequestFailedException e)
            {
                throw new InvalidOperationException($"Row {row.ToString(CultureInfo.InvariantCulture)} of the chat classifier (model '{Settings.ModelId}'): {e.Message}", e);
            }

            Usage.AddTokens(reply.PromptTokens, reply.CompletionTokens);
            if (key is not null)
            {
                Cache!.Set(key, reply);
            }
        }

        var (chosen, offset) = ChatAnswer.Parse(reply.Text, Labels);
        if (chosen >= 0)
        {
            return ChatAnswer.Probabilities(reply, chosen, offset, Labels);
        }

        if (Settings.UnparsedPolicy == ChatUnparsedPolicy.Throw)
        {
            throw new InvalidOperationException(
                $"Row {row.ToString(CultureInfo.InvariantCulture)}: the chat model '{Settings.ModelId}' replied \"{reply.Text}\", which names none of the labels " +
                $"[{string.Join(", ", Labels)}]. Use UnparsedPolicy = Uniform to score such rows uniformly and count them, or describe the labels better.");
        }

        Usage.AddUnparsed(row, reply.Text);
        return Uniform();
    }

    /// <summary>
    /// Refuses a new row's request once a budget is spent. Rows already in flight finish, with their retries, so the
    /// totals can pass a budget by what those rows send.
    /// </summary>
    private void CheckBudget()
    {
        if (Settings.MaximumRequests is { } requests && Usage.Requests >= requests)
        {
            throw new InvalidOperationException(
                $"The chat classifier's request budget is spent: {Usage.Requests} requests of MaximumRequests = {requests}. Raise the budget, or score fewer rows.");
        }

        if (Settings.MaximumTokens is { } tokens && Usage.PromptTokens + Usage.CompletionTokens >= tokens)
        {
            throw new InvalidOperationException(
                $"The chat classifier's token budget is spent: {Usage.PromptTokens + Usage.CompletionTokens} tokens of MaximumTokens = {tokens}. Raise the budget, or score fewer rows.");
        }
    }

    private float[] Uniform() => Enumerable.Repeat(1f / Labels.Count, Labels.Count).ToArray();
}
