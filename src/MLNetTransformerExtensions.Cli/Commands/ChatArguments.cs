using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// The chat classifier on the command line: <c>--endpoint</c>, <c>--chat-model</c>, <c>--concurrency</c> and the response
/// cache (on by default here, so re-running an evaluation costs nothing), shared by train, evaluate and predict. The
/// key comes from <c>OPENAI_API_KEY</c> only, never from a flag, so it stays out of shell histories.
/// </summary>
internal sealed class ChatArguments
{
    private readonly Option<string?> _endpoint = new("--endpoint") { Description = $"Chat classifier: the OpenAI-compatible base URL, e.g. http://localhost:11434/v1 for Ollama (default: {ChatClients.BaseUrlVariable}, else OpenAI). The key is read from {ChatClients.ApiKeyVariable}." };
    private readonly Option<string?> _model = new("--chat-model") { Description = "Chat classifier: the model id (on Azure OpenAI, the deployment). evaluate/predict: default, the one the model was trained with." };
    private readonly Option<int> _concurrency = new("--concurrency") { Description = "Chat classifier: requests in flight at once.", DefaultValueFactory = _ => ChatClassifierOptions.ChatDefaults.MaximumConcurrency };
    private readonly Option<string?> _cacheDirectory = new("--cache-dir") { Description = "Chat classifier: where replies are cached (default: mlnet-transformers/chat-cache in the user's local application data)." };
    private readonly Option<bool> _noCache = new("--no-cache") { Description = "Chat classifier: send every request, and keep no replies." };

    public IEnumerable<Option> All => [_endpoint, _model, _concurrency, _cacheDirectory, _noCache];

    /// <summary>What the user asked for, read once from a parse result.</summary>
    public Values Read(ParseResult parse) => new(parse.GetValue(_endpoint), parse.GetValue(_model), parse.GetValue(_concurrency),
        parse.GetValue(_noCache) ? null : parse.GetValue(_cacheDirectory)
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "mlnet-transformers", "chat-cache"));

    /// <summary>The values of the chat flags.</summary>
    public sealed record Values(string? Endpoint, string? Model, int Concurrency, string? CacheDirectory)
    {
        /// <summary>The OpenAI-compatible client, or a <see cref="CliException"/> that says which flag or variable is missing.</summary>
        public IChatClient CreateClient(string? model)
        {
            if (string.IsNullOrWhiteSpace(model))
            {
                throw new CliException("--kind chat needs --chat-model, the chat model to ask (e.g. gpt-4o-mini, or llama3.2 on Ollama).");
            }

            if (Concurrency <= 0)
            {
                throw new CliException($"--concurrency must be positive; got {Concurrency}.");
            }

            try
            {
                return ChatClients.CreateOpenAICompatible(model, Endpoint is null ? null : new Uri(Endpoint));
            }
            catch (UriFormatException)
            {
                throw new CliException($"--endpoint '{Endpoint}' is not a URL; give a base URL such as http://localhost:11434/v1.");
            }
            catch (InvalidOperationException e)
            {
                throw new CliException($"{e.Message} (or pass --endpoint).");
            }
        }

        /// <summary>
        /// Gives a loaded model's chat classifier its client (a model file never holds one); returns it for disposal, or
        /// null when the model has no chat classifier.
        /// </summary>
        public IChatClient? Attach(ITransformer model, CancellationToken cancellationToken)
        {
            if (!model.HasChatClassifier())
            {
                if (Endpoint is not null || Model is not null)
                {
                    throw new CliException("--endpoint and --chat-model apply to chat classifiers; this model is not one.");
                }

                return null;
            }

            var client = CreateClient(Model ?? model.GetChatModelId());
            model.UseChatClient(client, CacheDirectory, cancellationToken);
            return client;
        }
    }

    /// <summary>The usage columns of the <c>--json</c> line.</summary>
    public static void AddUsage(JsonObject result, ChatClassifierUsage usage, double scoringSeconds)
    {
        result["requests"] = usage.Requests;
        result["prompt_tokens"] = usage.PromptTokens;
        result["completion_tokens"] = usage.CompletionTokens;
        result["unparsed"] = usage.Unparsed;
        result["failed"] = usage.Failed;
        result["retries"] = usage.Retries;
        result["cache_hits"] = usage.CacheHits;
        result["scoring_seconds"] = Math.Round(scoringSeconds, 3);
        result["rows_per_second"] = Math.Round(usage.Rows / Math.Max(scoringSeconds, 1e-9), 1);
    }

    /// <summary>The usage table: what the evaluation cost, and the rows that went wrong.</summary>
    public static void Render(IAnsiConsole console, ChatClassifierUsage usage, double scoringSeconds)
    {
        string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        var table = new Table().Border(TableBorder.Rounded).Title("Chat model usage").AddColumn("Counter").AddColumn("Value");
        table.AddRow("Rows", N(usage.Rows));
        table.AddRow("Requests (retries included)", N(usage.Requests));
        table.AddRow("Retries", N(usage.Retries));
        table.AddRow("Cache hits", N(usage.CacheHits));
        table.AddRow("Prompt tokens", N(usage.PromptTokens));
        table.AddRow("Completion tokens", N(usage.CompletionTokens));
        table.AddRow("Unparsed replies", N(usage.Unparsed));
        table.AddRow("Failed rows", N(usage.Failed));
        table.AddRow("Rows/s", (usage.Rows / Math.Max(scoringSeconds, 1e-9)).ToString("0.0", CultureInfo.InvariantCulture));
        console.Write(table);
        foreach (var problem in usage.Problems.Take(10))
        {
            console.MarkupLine(Markup.Escape("  " + problem));
        }
    }
}
