# R's answer for the authors' Models 1-6, the reference tests/test_authors.py holds xling's
# Python fits against (R is not part of the project; this script is how the reference was made).
#
#   Rscript tests/r/authors_reference.R HELPERS.R PAPER_DATA_DIR OUT.csv CELLS.csv
#
# HELPERS.R is the authors' helpers.R (their repository, model_performance/, MIT); it builds
# their modelling table from the released files. Needs R with dplyr, purrr, readr, readxl,
# stringr and tibble (Debian: r-base-core r-cran-dplyr r-cran-purrr r-cran-readr r-cran-readxl
# r-cran-stringr r-cran-tibble). Writes one row per model term: model, term, estimate, std_err,
# aliased, n, deviance; M5-OLS rows for the per-model regressions of Model 5; and a TABLE row
# with the modelling table's row count. CELLS.csv: the table's rows, correct predictions,
# distinct texts and gold 'unrelated' rows per model x language x split x translation quality.
args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 4)
suppressMessages({
  library(dplyr); library(purrr); library(readr); library(readxl); library(stringr); library(tibble)
})
source(args[1])
root <- args[2]
df <- suppressMessages(build_combined_dataset(
  file.path(root, "test_dataset_raw"), file.path(root, "train_dataset_raw"),
  file.path(root, "test_dataset_translation"), file.path(root, "train_dataset_translation")
)) %>%
  prepare_modelling_dataset() %>%
  add_share_unrelated() %>%
  add_language_share() %>%
  add_dataset_size() %>%
  set_reference_levels()

fits <- list(
  M1 = Correct ~ Model + Language + Train_Test + TranslationQuality + label,
  M2 = Correct ~ Model * Language + label + Train_Test + TranslationQuality,
  M3 = Correct ~ Model * Language + Model * Share_Unrelated + Train_Test + TranslationQuality,
  M5 = Correct ~ Model * LangShare + Language + label + Train_Test + TranslationQuality,
  M6 = Correct ~ Model + Language + Train_Test + TranslationQuality + label + DatasetSize
)
fits <- lapply(fits, function(f) glm(f, data = df, family = binomial()))
translated <- df %>% filter(Translation == 1) %>% droplevels()
f4 <- if (nlevels(translated$Model) > 1) {
  Correct ~ Model * label + Language + Train_Test + TranslationQuality
} else {
  Correct ~ label + Language + Train_Test + TranslationQuality
}
fits$M4 <- glm(f4, data = translated, family = binomial())

tidy_fit <- function(name, f) {
  co <- coef(f)
  s <- summary(f)$coefficients
  tibble(
    model = name, term = names(co), estimate = unname(co),
    std_err = unname(s[match(names(co), rownames(s)), 2]),
    aliased = is.na(co), n = nobs(f), deviance = deviance(f)
  )
}
out <- bind_rows(lapply(sort(names(fits)), function(m) tidy_fit(m, fits[[m]])))

df$Correct_Num <- as.numeric(as.character(df$Correct))
by_lang <- df %>%
  filter(Language != "English", label != "unrelated") %>%
  group_by(Language, Model, LangShare) %>%
  summarise(accuracy = mean(Correct_Num), .groups = "drop")
ols <- by_lang %>%
  group_by(Model) %>%
  group_modify(~ {
    s <- summary(lm(accuracy ~ LangShare, data = .x))$coefficients
    tibble(term = rownames(s), estimate = s[, 1], std_err = s[, 2], n = nrow(.x))
  }) %>%
  ungroup() %>%
  transmute(model = "M5-OLS", term = paste0(Model, ":", term), estimate, std_err,
            aliased = FALSE, n, deviance = NA_real_)
rows <- tibble(model = "TABLE", term = "rows", estimate = nrow(df), std_err = NA_real_,
               aliased = FALSE, n = nrow(df), deviance = NA_real_)
write_csv(bind_rows(out, ols, rows), args[3])
cells <- df %>%
  group_by(Model, Language, Train_Test, TranslationQuality) %>%
  summarise(rows = n(), correct = sum(Correct == 1), texts = n_distinct(plaintext),
            unrelated = sum(label == "unrelated"), .groups = "drop") %>%
  mutate(across(c(Model, Language, Train_Test, TranslationQuality), as.character)) %>%
  arrange(Model, Language, Train_Test, TranslationQuality)
write_csv(cells, args[4])
