using System.CommandLine;
using MLNetTransformerExtensions.Cli.Commands;

var root = new RootCommand("Transformer text classification for ML.NET: fine-tune, evaluate and inspect BERT, RoBERTa, DistilBERT and GPT-2 models.");
root.Subcommands.Add(InfoCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(ExperimentCommand.Create());
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.Subcommands.Add(ExportCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(EmbedCommand.Create());
root.Subcommands.Add(ExplainCommand.Create());
root.Subcommands.Add(VocabCommand.Create());
root.Subcommands.Add(PretrainCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
return root.Parse(args).Invoke();
